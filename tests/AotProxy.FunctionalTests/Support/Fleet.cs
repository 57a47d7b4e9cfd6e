using System.Net;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// What routing did, read from both ends: the simulators' own request counters (which worker a
// request really reached) and the admin API (what the gateway believes about each worker).
internal static class Fleet
{
    public static long[] Requests(TestGateway gateway) => [.. gateway.Workers.Select(w => w.Stats.RequestsTotal)];

    // Sends one request that must succeed and returns the index of the one worker it reached.
    public static async Task<int> ServedByAsync(TestGateway gateway, HttpRequestMessage request)
    {
        using (request)
        {
            var before = Requests(gateway);
            using var response = await gateway.Client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
            var after = Requests(gateway);
            var reached = Enumerable.Range(0, after.Length).Where(i => after[i] != before[i]).ToArray();
            Assert.True(reached.Length == 1, $"the request reached {reached.Length} workers (counts {string.Join(",", before)} -> {string.Join(",", after)})");
            return reached[0];
        }
    }

    // `count` sequential chat requests, each of which must succeed; returns how many each worker got.
    public static async Task<int[]> SpreadAsync(TestGateway gateway, int count, bool stream = false)
    {
        var served = new int[gateway.Workers.Count];
        for (var i = 0; i < count; i++)
        {
            served[await ServedByAsync(gateway, TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream, maxTokens: 4)))]++;
        }

        return served;
    }

    public static async Task<JsonElement> GetJsonAsync(TestGateway gateway, string path)
    {
        using var json = JsonDocument.Parse(await gateway.Admin.GetStringAsync(path));
        return json.RootElement.Clone();
    }

    public static async Task<JsonElement> PostJsonAsync(TestGateway gateway, string path)
    {
        using var response = await gateway.Admin.PostAsync(path, null);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST {path}: {(int)response.StatusCode} {body}");
        using var json = JsonDocument.Parse(body);
        return json.RootElement.Clone();
    }

    // One worker's entry in GET /api/workers (or in a drain answer, which has the same shape).
    public static JsonElement Named(JsonElement array, string name) =>
        array.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);

    public static async Task<JsonElement> WorkerAsync(TestGateway gateway, string name) =>
        Named(await GetJsonAsync(gateway, "/api/workers"), name);

    public static async Task<JsonElement> BreakerAsync(TestGateway gateway, string name) =>
        Named(await GetJsonAsync(gateway, "/api/circuit-breaker/stats"), name);

    // Whether /metrics has a series `name{...label...}` at all (MetricsText.Value says 0 for both
    // an absent series and a zero one).
    public static bool HasSeries(string metrics, string name, string label) =>
        metrics.Split('\n').Any(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal));

    // The sum over every series of one metric.
    public static double Sum(string metrics, string name) =>
        metrics.Split('\n')
            .Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Length > name.Length && l[name.Length] is '{' or ' ')
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));

    // /metrics once llm_gateway_requests_total counts `requests` in all: a request is counted (its
    // tokens just before) in its finally (Ledger/RecordStage), which may run after its client has
    // read the last byte (IdentityTests read 0 there 2 times in 5 on a loaded host).
    public static async Task<string> MetricsAfterAsync(HttpClient admin, int requests)
    {
        var metrics = string.Empty;
        await TestGateway.WaitUntilAsync(async () => Sum(metrics = await admin.GetStringAsync("/metrics"), "llm_gateway_requests_total") >= requests, $"{requests} request(s) counted");
        return metrics;
    }

    // /api/tenants's entry for the tenant once the gateway has finished the `handled` requests the
    // test sent (default: `requests`, each of which reached a worker), where it must show exactly
    // `requests` accounted. Each request is counted in llm_gateway_requests_total last, in its
    // finally (Ledger/RecordStage), after its accounting (AccountingStage, or the response cache's):
    // once all of them are counted, a request accounted twice, or not at all, shows. Not a sleep:
    // the count says the gateway is done with them.
    public static Task<JsonElement> TenantAfterAsync(TestGateway gateway, string tenant, long requests, int? handled = null) =>
        TenantAfterAsync(gateway.Admin, tenant, requests, handled);

    // The same on any gateway's admin listener (the AOT binary's too).
    public static async Task<JsonElement> TenantAfterAsync(HttpClient admin, string tenant, long requests, int? handled = null)
    {
        var finished = handled ?? (int)requests;
        var metrics = await MetricsAfterAsync(admin, finished);
        Assert.Equal(finished, Sum(metrics, "llm_gateway_requests_total"));
        using var tenants = JsonDocument.Parse(await admin.GetStringAsync("/api/tenants"));
        var used = Named(tenants.RootElement, tenant).Clone();
        Assert.Equal(requests, used.GetProperty("requests").GetInt64());
        return used;
    }

    public static async Task AssertNothingInFlightAsync(TestGateway gateway) =>
        await TestGateway.WaitUntilAsync(async () =>
        {
            var metrics = await gateway.MetricsAsync();
            return MetricsText.Value(metrics, "llm_gateway_active_requests") == 0
                && gateway.Host.State.Current.Workers.Workers.All(w => w.InFlight == 0 && w.SlotsTaken == 0);
        }, "nothing is in flight");
}
