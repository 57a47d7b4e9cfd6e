using System.Globalization;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Simulator;
using Npgsql;

namespace AotProxy.FunctionalTests;

// [store] postgres_url against the real binary (the AOT one in CI), a real redis-server and a
// real postgres on loopback: three replicas write one ledger whose totals equal what the clients
// themselves were told (each response's usage), exactly, also when Postgres stops under load and
// comes back (the rows wait in each replica's own file and are replayed, each once).
public sealed class SharedLedgerTests : IAsyncLifetime
{
    // Requests per run, from 6 clients at once over the 3 replicas.
    private const int Requests = 240;
    private const int Clients = 6;

    private ClusterFleet _fleet = null!;
    private PostgresServer _postgres = null!;
    private int _down; // 1 while Postgres is stopped

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        _fleet = await ClusterFleet.StartAsync(new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 64 }, ledger: true);
    }

    public async Task DisposeAsync()
    {
        await _fleet.DisposeAsync();
        await _postgres.DisposeAsync();
    }

    [Fact]
    public async Task ThreeReplicas_WriteOneLedger_WhoseTotalsEqualTheClientsOwnCounts()
    {
        var replicas = await StartReplicasAsync();

        var counted = await LoadAsync(replicas, Requests, atHalf: null);

        await WaitForLedgerAsync(counted.Requests);
        await AssertLedgerEqualsAsync(counted);
        Assert.Equal(3L, await ScalarAsync("SELECT count(DISTINCT ledger_id) FROM ledger"));

        // /api/usage and `aotproxy usage` on any replica read the shared ledger: the fleet's total.
        using (var admin = new HttpClient { BaseAddress = replicas[1].AdminUri, Timeout = TimeSpan.FromSeconds(10) })
        using (var usage = JsonDocument.Parse(await admin.GetStringAsync("/api/usage?by=tenant")))
        {
            var acme = usage.RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "acme");
            Assert.Equal(counted.Requests, acme.GetProperty("requests").GetInt64());
            Assert.Equal(counted.Prompt, acme.GetProperty("prompt_tokens").GetInt64());
            Assert.Equal(counted.Completion, acme.GetProperty("completion_tokens").GetInt64());
        }

        var (exitCode, output) = await GatewayProcess.RunToEndAsync("usage", "--config", Path.Combine(_fleet.Directory.FullName, "replica-c.toml"), "--json");
        Assert.True(exitCode == 0, output);
        using var printed = JsonDocument.Parse(output);
        Assert.Equal(counted.Requests, printed.RootElement.GetProperty("rows").EnumerateArray().Single().GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task APostgresRestartUnderLoad_LosesNoRow_AndCountsNoneTwice()
    {
        var replicas = await StartReplicasAsync();

        // At half the requests Postgres stops; the clients go on (past Requests if need be) until
        // every replica has said it spools, and Postgres starts again under the same load.
        var counted = await LoadAsync(replicas, Requests, atHalf: async () =>
        {
            await _postgres.StopAsync();
            Volatile.Write(ref _down, 1);
            foreach (var replica in replicas)
            {
                await replica.WaitForLineAsync("rows are spooled to the local file", TimeSpan.FromSeconds(30));
            }

            // The report needs the shared ledger: a clear 503 naming the store meanwhile.
            using (var admin = new HttpClient { BaseAddress = replicas[0].AdminUri, Timeout = TimeSpan.FromSeconds(30) })
            using (var usage = await admin.GetAsync("/api/usage"))
            {
                var body = await usage.Content.ReadAsStringAsync();
                Assert.True(usage.StatusCode == HttpStatusCode.ServiceUnavailable, body);
                Assert.Contains("ledger_unavailable", body, StringComparison.Ordinal);
                Assert.Contains("postgres://postgres@127.0.0.1", body, StringComparison.Ordinal);
            }

            Volatile.Write(ref _down, 0);
            await _postgres.RestartAsync();
        });

        Assert.True(counted.DuringOutage > 0, "no request was answered while Postgres was stopped");
        foreach (var replica in replicas)
        {
            await replica.WaitForLineAsync("answers again", TimeSpan.FromSeconds(30));
        }

        await WaitForLedgerAsync(counted.Requests);
        await AssertLedgerEqualsAsync(counted);
    }

    [Fact]
    public async Task WithoutACluster_AReplicaOnANewFile_IsSeededFromTheSharedLedger()
    {
        // Two gateways, one after the other, each with a ledger file of its own: the second's
        // file is empty, so what it knows at startup came from Postgres.
        string Extra(string file) => $"""

            [ledger]
            path = "{Path.Combine(_fleet.Directory.FullName, file)}"

            [store]
            postgres_url = "{_postgres.Url}"
            """;
        long used;
        await using (var first = await TestGateway.StartAsync(workers: 1, extraToml: Extra("first.db")))
        {
            for (var i = 0; i < 3; i++)
            {
                using var response = await first.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 5)));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            var acme = await Fleet.TenantAfterAsync(first, "acme", 3);
            used = acme.GetProperty("prompt_tokens").GetInt64() + acme.GetProperty("completion_tokens").GetInt64();
        }

        // The first one's stop shipped its last rows.
        Assert.Equal(3L, await ScalarAsync("SELECT count(*) FROM ledger"));
        await using var second = await TestGateway.StartAsync(workers: 1, extraToml: Extra("second.db"));
        var seeded = Fleet.Named(await Fleet.GetJsonAsync(second, "/api/tenants"), "acme");
        Assert.Equal(used, seeded.GetProperty("month_tokens").GetInt64());
        Assert.Equal(0, second.Host.Ledger!.Written);
    }

    private async Task<GatewayProcess[]> StartReplicasAsync()
    {
        var store = $"""

            [store]
            postgres_url = "{_postgres.Url}"

            """;
        return
        [
            await _fleet.StartReplicaAsync("replica-a", store),
            await _fleet.StartReplicaAsync("replica-b", store),
            await _fleet.StartReplicaAsync("replica-c", store),
        ];
    }

    // `requests` chat completions, round robin over the replicas from `Clients` clients at once;
    // atHalf runs once half of them have been answered, and the clients go on until it has ended
    // (past `requests` if it takes longer). Every request must succeed: the ledger is compared
    // with what the clients were told.
    private async Task<Counted> LoadAsync(GatewayProcess[] replicas, int requests, Func<Task>? atHalf)
    {
        var clients = replicas.Select(r => new HttpClient { BaseAddress = r.DataUri, Timeout = TimeSpan.FromSeconds(30) }).ToArray();
        var next = -1;
        var done = 0;
        long prompt = 0, completion = 0;
        long duringOutage = 0;
        var half = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var phase = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (atHalf is null)
        {
            phase.SetResult();
        }

        async Task ClientAsync()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < requests || !phase.Task.IsCompleted)
            {
                using var request = TestGateway.Post("/v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 4 + (i % 13), content: "count me " + i.ToString(CultureInfo.InvariantCulture)));
                using var response = await clients[i % clients.Length].SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, body);
                using var json = JsonDocument.Parse(body);
                var usage = json.RootElement.GetProperty("usage");
                Interlocked.Add(ref prompt, usage.GetProperty("prompt_tokens").GetInt64());
                Interlocked.Add(ref completion, usage.GetProperty("completion_tokens").GetInt64());
                if (Volatile.Read(ref _down) == 1)
                {
                    Interlocked.Increment(ref duringOutage);
                }

                if (Interlocked.Increment(ref done) == requests / 2)
                {
                    half.TrySetResult();
                }
            }
        }

        var load = Enumerable.Range(0, Clients).Select(_ => ClientAsync()).ToArray();
        if (atHalf is not null)
        {
            await Task.WhenAny(half.Task, Task.WhenAll(load));
            Assert.True(half.Task.IsCompleted, "the load ended before half of it was answered");
            try
            {
                await atHalf();
            }
            finally
            {
                phase.TrySetResult();
            }
        }

        await Task.WhenAll(load);
        foreach (var client in clients)
        {
            client.Dispose();
        }

        return new Counted(done, prompt, completion, duringOutage);
    }

    private async Task WaitForLedgerAsync(long requests)
    {
        // Each replica ships every batch_interval (1 s); a loaded machine may take a few.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((long)(await ScalarAsync("SELECT count(*) FROM ledger"))! < requests && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
    }

    private async Task AssertLedgerEqualsAsync(Counted counted)
    {
        Assert.Equal(counted.Requests, await ScalarAsync("SELECT count(*) FROM ledger"));
        Assert.Equal(counted.Prompt, await ScalarAsync("SELECT sum(prompt_tokens)::bigint FROM ledger"));
        Assert.Equal(counted.Completion, await ScalarAsync("SELECT sum(completion_tokens)::bigint FROM ledger"));
        Assert.Equal(counted.Requests, await ScalarAsync("SELECT count(*) FROM ledger WHERE tenant = 'acme' AND status = 200 AND NOT estimated"));
        Assert.Equal(counted.Requests, await ScalarAsync("SELECT count(DISTINCT request_id) FROM ledger"));
    }

    private async Task<object?> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_postgres.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }

    private sealed record Counted(long Requests, long Prompt, long Completion, long DuringOutage);
}
