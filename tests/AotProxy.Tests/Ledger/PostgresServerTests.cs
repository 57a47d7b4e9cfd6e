using Npgsql;

namespace AotProxy.Tests.Ledger;

// The harness itself (tests/Shared/PostgresServer.cs): a real postgres on a loopback port that
// answers queries, and whose committed rows outlive a crash-like stop and a restart.
public sealed class PostgresServerTests
{
    [Fact]
    public async Task Starts_Answers_AndKeepsItsRowsThroughARestart()
    {
        await using var server = await PostgresServer.StartAsync();
        Assert.True(server.IsRunning);
        await using (var connection = await OpenAsync(server))
        {
            await ExecuteAsync(connection, "CREATE TABLE kept (n int PRIMARY KEY); INSERT INTO kept VALUES (1), (2), (3);");
        }

        await server.StopAsync();
        Assert.False(server.IsRunning);
        await Assert.ThrowsAsync<NpgsqlException>(async () => await OpenAsync(server));

        await server.RestartAsync();
        await using (var connection = await OpenAsync(server))
        {
            await using var command = new NpgsqlCommand("SELECT sum(n) FROM kept", connection);
            Assert.Equal(6L, await command.ExecuteScalarAsync());
        }

        Assert.StartsWith("postgres://postgres@127.0.0.1:", server.Url, StringComparison.Ordinal);
    }

    private static async Task<NpgsqlConnection> OpenAsync(PostgresServer server)
    {
        var connection = new NpgsqlConnection(server.ConnectionString);
        try
        {
            await connection.OpenAsync();
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
