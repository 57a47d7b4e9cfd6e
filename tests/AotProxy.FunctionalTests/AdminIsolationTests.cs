using System.Net;
using System.Runtime.Versioning;
using AotProxy.FunctionalTests.Support;
using AotProxy.Ledger;

namespace AotProxy.FunctionalTests;

// The binary runs socket continuations inline on its epoll threads (Gateway/EventLoop.cs), so
// whatever an admin handler does synchronously, the requests on the same epoll thread wait for.
// With one epoll thread, every socket shares it: admin work that blocks must run elsewhere.
// Linux: the test reads /proc.
[SupportedOSPlatform("linux")]
public class AdminIsolationTests
{
    // GET /api/usage?by=day over this many rows takes ~0.5 s on the 2-core CI machine (a day
    // key per row), a chat completion through the gateway a few ms: the query is still running
    // when the completion comes back, unless the completion waited for it.
    private const int LedgerRows = 500_000;

    private static readonly string VllmBody = Fixtures.Text("openai/chat_nonstream.json");

    [Fact]
    public async Task UsageQuery_OverALargeLedger_DoesNotHoldUpTheDataPlane_OnOneEpollThread()
    {
        await using var worker = new RawWorker(_ => RawReply.Of(RawWorker.Json(VllmBody)));
        var directory = Directory.CreateTempSubdirectory("aotproxy-admin-isolation-");
        var ledger = Path.Combine(directory.FullName, "usage.db");
        Fill(ledger, LedgerRows);
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([], extra: worker.Section(TestGateway.Model) + $"""

            [ledger]
            path = "{ledger}"
            batch_interval = "50ms"
            """));
        await using var gateway = GatewayProcess.Start(new Dictionary<string, string> { ["DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT"] = "1" }, "serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri, Timeout = TimeSpan.FromSeconds(60) };
        using (var warm = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        // Kestrel starts a new connection's first request on the thread pool; later requests on
        // it continue where the socket's read completed: the epoll thread.
        using (var status = await admin.GetAsync("/api/status"))
        {
            Assert.Equal(HttpStatusCode.OK, status.StatusCode);
        }

        // The query's own connection opens the ledger once more: it is scanning from then on.
        var writerHandles = LedgerHandles(gateway.Id, ledger);
        // Headers only: they are flushed once the query is done, while the handler still runs.
        var usage = admin.GetAsync("/api/usage?by=day", HttpCompletionOption.ResponseHeadersRead);
        await TestGateway.WaitUntilAsync(() => Task.FromResult(usage.IsCompleted || LedgerHandles(gateway.Id, ledger) > writerHandles), "the usage query opened the ledger");
        using (var chat = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false))))
        {
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        }

        Assert.False(usage.IsCompleted, "the chat completion came back only after the usage query");
        using var answer = await usage;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("\"requests\": ", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        directory.Delete(recursive: true);
    }

    // The gateway's own schema, then rows a minute apart, in one statement (~2 s for 500k).
    private static void Fill(string path, int rows)
    {
        using var connection = LedgerDatabase.Open(path, create: true);
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $rows - 1)
            INSERT INTO requests ({LedgerDatabase.Columns})
            SELECT printf('r%07d', i), 1700000000000 + i * 60000, 'acme', '', 'default', '{TestGateway.Model}', '{TestGateway.Model}', 'raw',
                   100, 20, 0, 0, 0, 0.5, 12.5, 250.0, 200, 'admitted', 1000, 0
            FROM n
            """;
        command.Parameters.AddWithValue("$rows", rows);
        command.ExecuteNonQuery();
    }

    // How many of the process's file descriptors are the ledger file itself (not -wal, -shm).
    private static int LedgerHandles(int pid, string ledger) =>
        new DirectoryInfo($"/proc/{pid}/fd").EnumerateFileSystemInfos().Count(fd => Target(fd) == ledger);

    private static string? Target(FileSystemInfo fd)
    {
        try
        {
            return fd.LinkTarget;
        }
        catch (IOException)
        {
            return null; // closed since the listing
        }
    }
}
