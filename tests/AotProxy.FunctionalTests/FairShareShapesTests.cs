using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace AotProxy.FunctionalTests;

// Issue 14, item 5, against the real executable (the AOT binary in CI): two equally weighted,
// backlogged tenants with different request shapes, ~200-character prompts with max_tokens 16
// and ~1,500-token prompts with max_tokens 128, on one simulated worker. Fair share must give
// them equal token-weighted service, measured from the worker's own usage (input_weight x
// prompt + output_weight x completion), and its counters must agree with that usage. With the
// prompt estimated as body bytes / 4 and over-estimates never refunded, short prompts were
// charged ~1.6x their cost: 0.69:1.
//
// A bounded version of perf/admission.sh's `shapes` experiment (perf/RESULTS.md has the full
// one): the simulator decodes 10x faster than its default, so that a long request takes ~0.2 s.
public class FairShareShapesTests(ITestOutputHelper output)
{
    private const string ShortKey = "sk-test-short-prompts";
    private const string LongKey = "sk-test-long-prompts";
    private const double InputWeight = 1.0;
    private const double OutputWeight = 2.0;

    // Long requests completed before the measurement stops: ~90 k weighted tokens each side,
    // against ~2 k for one long request in flight at the end. Bounded in time as well.
    private const int LongRequests = 40;
    private static readonly TimeSpan MaxRun = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TwoBackloggedTenants_ShortAndLongPrompts_GetEqualWeightedService()
    {
        await using var worker = await SimulatedWorker.StartAsync(
            new SimulatorOptions { Name = "sim-0", Model = TestGateway.Model, MaxNumSeqs = 4, DecodeTokensPerSecond = 1_000, PrefillTokensPerSecond = 200_000 },
            new IPEndPoint(IPAddress.Loopback, 0),
            NullLoggerFactory.Instance);
        var directory = Directory.CreateTempSubdirectory("aotproxy-shapes-");
        var config = Path.Combine(directory.FullName, "aotproxy.toml");
        await File.WriteAllTextAsync(config, TestGateway.Toml([worker], extra: $"""

            [scheduler]
            policy = "fairshare"
            input_weight = {InputWeight.ToString("0.0", CultureInfo.InvariantCulture)}
            output_weight = {OutputWeight.ToString("0.0", CultureInfo.InvariantCulture)}

            [[tenants]]
            name = "short"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(ShortKey)}"]

            [[tenants]]
            name = "long"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(LongKey)}"]
            """));

        await using var gateway = GatewayProcess.Start("serve", "--config", config);
        await gateway.WaitForReadyAsync();
        using var http = new HttpClient { BaseAddress = gateway.DataUri, Timeout = TimeSpan.FromSeconds(30) };
        using var admin = new HttpClient { BaseAddress = gateway.AdminUri };

        // Closed-loop clients, 16 short and 8 long, on four slots: each tenant always has requests
        // waiting (short ones come back within milliseconds, so they need more clients to stay
        // queued), so the scheduler alone decides the split. The measurement stops once the long
        // tenant has LongRequests (or time is up); what completes after that, while the clients
        // let their last requests finish, is no longer a contest and counts only towards the
        // totals that the counters are checked against.
        var served = new Dictionary<string, double> { ["short"] = 0, ["long"] = 0 };
        var measured = new Dictionary<string, double> { ["short"] = 0, ["long"] = 0 };
        var counts = new Dictionary<string, int> { ["short"] = 0, ["long"] = 0 };
        var answered = 0; // every request, measured or not
        var stopped = false;
        var measuring = false; // from the moment both tenants are backlogged
        var clock = Stopwatch.StartNew();
        bool Done()
        {
            lock (served)
            {
                return stopped |= clock.Elapsed > MaxRun;
            }
        }

        async Task Client(string tenant, string key, int promptChars, int maxTokens, int client)
        {
            for (var i = 0; !Done(); i++)
            {
                var prompt = Prompt($"{tenant} {client} {i} ", promptChars);
                using var response = await http.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: maxTokens, content: prompt), key));
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
                using var json = JsonDocument.Parse(body);
                var usage = json.RootElement.GetProperty("usage");
                var cost = (InputWeight * usage.GetProperty("prompt_tokens").GetInt64()) + (OutputWeight * usage.GetProperty("completion_tokens").GetInt64());
                lock (served)
                {
                    answered++;
                    served[tenant] += cost;
                    if (measuring && !stopped)
                    {
                        measured[tenant] += cost;
                        counts[tenant]++;
                        stopped = counts["long"] >= LongRequests;
                    }
                }
            }
        }

        // The short tenant first, backlogged before the long one starts: a tenant that becomes
        // backlogged is lifted to the other's counter (idle time banks no credit), and that lift
        // is in its counter but in no usage. Short, lifted when nothing else is backlogged, starts
        // at 0; long is lifted to short's counter when it queues, at most `lift` (short's counter
        // read once long is seen waiting). Started the other way round, under load, long's first
        // four requests lifted short by their estimates, 4,450 weighted tokens (7%).
        var clients = Enumerable.Range(0, 16).Select(c => Client("short", ShortKey, 200, 16, c)).ToList();
        await WaitForWaitingAsync(admin, "short");
        clients.AddRange(Enumerable.Range(0, 8).Select(c => Client("long", LongKey, 6_000, 128, c)));
        var lift = (await WaitForWaitingAsync(admin, "long"))["short"];
        lock (served)
        {
            measuring = true;
        }

        await Task.WhenAll(clients).WaitAsync(MaxRun + TimeSpan.FromSeconds(30));

        Assert.True(counts["long"] >= LongRequests, $"{counts["long"]} long and {counts["short"]} short requests in {clock.Elapsed.TotalSeconds:0} s");
        var ratio = measured["short"] / measured["long"];
        output.WriteLine($"weighted service short:long = {ratio:0.000} ({measured["short"]:0} : {measured["long"]:0}; {counts["short"]} and {counts["long"]} requests in {clock.Elapsed.TotalSeconds:0.0} s)");
        Assert.True(
            ratio is >= 0.90 and <= 1.11,
            $"weighted service short:long = {ratio:0.000} ({measured["short"]:0} : {measured["long"]:0}; {counts["short"]} and {counts["long"]} requests)");

        // Once every request has settled, each counter is its tenant's usage at the weights (no
        // lift moved them while both stayed backlogged; at the start one may have, a little). A
        // request frees its slot before it settles its counters (ModelAdmission.Release) and is
        // counted after both: wait until every answered request is counted, not for in_use 0.
        await Fleet.MetricsAfterAsync(admin, answered);
        JsonElement model;
        using (var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues")))
        {
            model = queues.RootElement.GetProperty("models")[0].Clone();
        }

        Assert.Equal(0, model.GetProperty("in_use").GetInt32());
        foreach (var account in model.GetProperty("tenants").EnumerateArray())
        {
            var name = account.GetProperty("name").GetString()!;
            var counter = account.GetProperty("virtual_tokens").GetDouble();
            output.WriteLine($"{name}: counter {counter:0}, usage {served[name]:0} weighted tokens");
            var lifted = name == "long" ? lift : 0;
            Assert.True(
                Math.Abs(counter - served[name]) <= (0.02 * served[name]) + lifted,
                $"{name}: counter {counter:0} for {served[name]:0} weighted tokens of usage (lifted at most {lifted:0} at its start)");
        }

        directory.Delete(recursive: true);
    }

    // Waits until `tenant` has a request queued; returns each tenant's counter as then read.
    private static async Task<Dictionary<string, double>> WaitForWaitingAsync(HttpClient admin, string tenant)
    {
        var counters = new Dictionary<string, double>();
        await TestGateway.WaitUntilAsync(
            async () =>
            {
                using var queues = JsonDocument.Parse(await admin.GetStringAsync("/api/queues"));
                var models = queues.RootElement.GetProperty("models");
                if (models.GetArrayLength() == 0)
                {
                    return false; // no request has reached admission yet: the model has no queue
                }

                var waiting = false;
                foreach (var account in models[0].GetProperty("tenants").EnumerateArray())
                {
                    var name = account.GetProperty("name").GetString()!;
                    counters[name] = account.GetProperty("virtual_tokens").GetDouble();
                    waiting |= name == tenant && account.GetProperty("waiting").GetInt32() > 0;
                }

                return waiting;
            },
            $"tenant {tenant} has a request waiting");
        return counters;
    }

    // `length` characters of words, starting with `head` so that no two prompts share a prefix.
    private static string Prompt(string head, int length)
    {
        var text = new System.Text.StringBuilder(head, length + 16);
        while (text.Length < length)
        {
            text.Append("the gateway counts every token ");
        }

        return text.ToString(0, length);
    }
}
