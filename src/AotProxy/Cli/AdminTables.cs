using System.Globalization;
using System.Text.Json;

namespace AotProxy.Cli;

// The admin API's answers as tables for people (`aotproxy status | workers | queues | cluster`, and the
// frames of `aotproxy watch`), read from the JSON the API writes so that a table never says
// something the API does not. A field an older gateway does not send shows as "-".
internal static class AdminTables
{
    private static readonly string[] WorkerColumns = ["name", "health", "breaker", "draining", "in_flight/slots", "running", "waiting", "kv", "errors", "requests"];
    private static readonly string[] QueueColumns = ["model", "slots_in_use", "waiting", "waiting_by_class", "oldest_wait", "grants/s"];
    private static readonly string[] MemberColumns = ["replica", "version", "revision", "config", "in_flight", "up", "last_seen", "expires_in", "store_ms"];

    // The table of `what` (status, workers, queues, cluster, tenants) from the API's answer; false, with
    // nothing written, when the answer is not of that shape: --admin names something other than an
    // AotProxy admin listener.
    public static bool TryWrite(string what, TextWriter output, JsonElement answer, JsonElement? cluster = null)
    {
        if (!Shaped(what, answer))
        {
            return false;
        }

        switch (what)
        {
            case "workers":
                Workers(output, answer);
                break;
            case "queues":
                Queues(output, answer);
                break;
            case "cluster":
                Members(output, answer);
                break;
            case "tenants":
                TenantsCommand.WriteTable(output, answer);
                break;
            default:
                Status(output, answer, cluster);
                break;
        }

        return true;
    }

    public static string NotTheApi(string baseUrl) => $"{baseUrl} did not answer as an AotProxy admin API (is --admin its admin listener?)";

    // GET /api/workers: one line per worker; the scraped gauges "-" before the first scrape.
    private static void Workers(TextWriter output, JsonElement workers)
    {
        var lines = new List<string[]> { WorkerColumns };
        foreach (var w in workers.EnumerateArray())
        {
            var scrape = w.TryGetProperty("scrape", out var s) ? s : default;
            lines.Add(
            [
                Text(w, "name"),
                Bool(w, "warming") ? Text(w, "health") + ", warming" : Text(w, "health"), // not routable until its warm-up answers
                Text(w, "breaker"),
                Bool(w, "draining") ? "yes" : "no",
                $"{Text(w, "in_flight")}/{Text(w, "slots")}",
                Whole(scrape, "running"),
                Whole(scrape, "waiting"),
                Percent(scrape, "kv_cache_usage"),
                Percent(w, "error_rate"),
                Text(w, "requests"),
            ]);
        }

        Write(output, lines, i => i >= 4, "(no workers)");
    }

    // GET /api/queues: one line per model pool. Its oldest wait is the oldest of its levels'.
    private static void Queues(TextWriter output, JsonElement queues)
    {
        var lines = new List<string[]> { QueueColumns };
        foreach (var m in Array(queues, "models"))
        {
            var byClass = Array(m, "classes").Where(c => Number(c, "waiting") > 0).Select(c => $"{Text(c, "name")}={Text(c, "waiting")}");
            var oldest = Array(m, "levels").Select(l => Number(l, "oldest_wait_seconds") ?? 0).DefaultIfEmpty(0).Max();
            lines.Add(
            [
                Text(m, "model"),
                $"{Text(m, "in_use")}/{Text(m, "capacity")}",
                Text(m, "waiting"),
                string.Join(' ', byClass) is { Length: > 0 } classes ? classes : "-",
                Seconds(oldest),
                Fixed(Number(m, "grant_rate"), "0.0"),
            ]);
        }

        Write(output, lines, i => i is 1 or 2 or 4 or 5, "(no model pools)");
        if (queues.TryGetProperty("policy", out _))
        {
            output.WriteLine($"policy: {Text(queues, "policy")}");
        }
    }

    // GET /api/cluster: this replica's view of the store, then one line per replica ("*" marks this
    // one; "DIFFERS": its config is not the one most replicas run).
    private static void Members(TextWriter output, JsonElement cluster)
    {
        var lines = new List<string[]> { new[] { "cluster", Cluster(cluster) } };
        if (Text(cluster, "mode") == "cluster")
        {
            if (Object(cluster, "error") is { ValueKind: JsonValueKind.String } error)
            {
                lines.Add(["store error", error.GetString()!]);
            }

            lines.Add(["store", $"{Text(cluster, "store")}, {Fixed(Number(cluster, "store_latency_ms"), "0.0")} ms, {Text(cluster, "store_failures")} failures"]);
            lines.Add(["config", $"{Text(cluster, "config_digest")} (most replicas: {Text(cluster, "majority_config_digest")})"]);
            lines.Add(["members as of", Time(cluster, "members_at")]);
        }

        TextTable.Write(output, lines, _ => false);
        if (Text(cluster, "mode") != "cluster")
        {
            return;
        }

        output.WriteLine();
        var members = new List<string[]> { MemberColumns };
        foreach (var m in Array(cluster, "members"))
        {
            members.Add(
            [
                (Bool(m, "self") ? "*" : string.Empty) + Text(m, "name"),
                Text(m, "version"),
                Text(m, "config_revision"),
                Bool(m, "config_differs") ? "DIFFERS" : "same",
                Text(m, "in_flight"),
                Since(m, "started_at", cluster) is { } up ? Duration(up) : "-",
                Since(m, "last_seen", cluster) is { } seen ? Seconds(seen) : "-",
                Seconds(Number(m, "expires_in_seconds") ?? 0),
                Fixed(Number(m, "store_latency_ms"), "0.0"),
            ]);
        }

        Write(output, members, i => i is 2 or 4 or 7 or 8, "(no replica has beaten yet)");
    }

    // GET /api/status (and GET /api/cluster when it answered): one field a line.
    private static void Status(TextWriter output, JsonElement status, JsonElement? cluster)
    {
        var config = Object(status, "config");
        var reload = Object(config, "last_reload");
        var totals = Object(status, "totals");
        var lines = new List<string[]>
        {
            new[] { "version", Text(status, "version") },
            new[] { "uptime", Duration(Number(status, "uptime_seconds") ?? 0) },
            new[] { "config", $"revision {Text(config, "revision")} from {Text(config, "source")}, loaded {Time(config, "loaded_at")}" },
            new[] { "last reload", Reload(reload) },
            new[] { "workers", $"{Text(totals, "routable_workers")} routable of {Text(totals, "workers")}" },
            new[] { "in flight", Text(totals, "active_requests") },
            new[] { "tokens", $"{Text(totals, "prompt_tokens")} prompt, {Text(totals, "completion_tokens")} completion" },
            new[] { "ledger", status.TryGetProperty("ledger", out var ledger) && ledger.ValueKind == JsonValueKind.Object
                ? $"{Text(ledger, "rows_written")} rows written, {Text(ledger, "rows_dropped")} dropped, {Text(ledger, "rows_queued")} queued ({Text(ledger, "path")})"
                : "off" },
        };
        if (cluster is { } c)
        {
            lines.Add(["cluster", Cluster(c)]);
        }

        TextTable.Write(output, lines, _ => false);
    }

    // What the tables read without looking twice: the objects they index into.
    private static bool Shaped(string what, JsonElement answer) => what switch
    {
        "workers" or "tenants" => answer.ValueKind == JsonValueKind.Array && answer.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out _)),
        "queues" => Object(answer, "models").ValueKind == JsonValueKind.Array && Array(answer, "models").All(m => m.ValueKind == JsonValueKind.Object),
        "cluster" => Object(answer, "mode").ValueKind == JsonValueKind.String && Object(answer, "members").ValueKind == JsonValueKind.Array && Array(answer, "members").All(m => m.ValueKind == JsonValueKind.Object),
        _ => Object(answer, "version").ValueKind == JsonValueKind.String && Object(answer, "config").ValueKind == JsonValueKind.Object,
    };

    private static string Reload(JsonElement reload)
    {
        if (reload.ValueKind != JsonValueKind.Object)
        {
            return "-";
        }

        var at = Time(reload, "at");
        return Bool(reload, "ok")
            ? $"ok at {at} (revision {Text(reload, "revision")})"
            : $"FAILED at {at}: {string.Join("; ", Array(reload, "errors").Select(e => e.ToString()))}";
    }

    private static string Cluster(JsonElement cluster)
    {
        if (Text(cluster, "mode") != "cluster")
        {
            return "alone (no [cluster])";
        }

        var members = Array(cluster, "members").Count();
        var replica = Text(cluster, "replica");
        return Bool(cluster, "degraded")
            ? $"DEGRADED ({Text(cluster, "degraded_reason")}, store_down = {Text(cluster, "store_down")}), replica {replica}, {members} members"
            : $"healthy, replica {replica}, {members} members";
    }

    private static void Write(TextWriter output, List<string[]> lines, Func<int, bool> rightAligned, string none)
    {
        TextTable.Write(output, lines, rightAligned);
        if (lines.Count == 1)
        {
            output.WriteLine(none);
        }
    }

    private static string Text(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object ? AdminAnswer.Text(element, property) : "-";

    // A timestamp to the second, in UTC: "2026-12-05 19:35:42Z".
    private static string Time(JsonElement element, string property) =>
        Object(element, property) is { ValueKind: JsonValueKind.String } value && value.TryGetDateTimeOffset(out var time)
            ? time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)
            : "-";

    private static JsonElement Object(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) ? value : default;

    private static IEnumerable<JsonElement> Array(JsonElement element, string property) =>
        Object(element, property) is { ValueKind: JsonValueKind.Array } array ? array.EnumerateArray() : [];

    private static bool Bool(JsonElement element, string property) =>
        Object(element, property).ValueKind == JsonValueKind.True;

    private static double? Number(JsonElement element, string property) =>
        Object(element, property) is { ValueKind: JsonValueKind.Number } number ? number.GetDouble() : null;

    private static string Whole(JsonElement element, string property) => Fixed(Number(element, property), "0");

    // A 0..1 ratio (KV cache use, error rate) as a percentage.
    private static string Percent(JsonElement element, string property) =>
        Number(element, property) is { } ratio ? (ratio * 100).ToString("0", CultureInfo.InvariantCulture) + "%" : "-";

    private static string Fixed(double? value, string format) =>
        value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    // How many seconds before the list was taken (members_at) a member's time was.
    private static double? Since(JsonElement member, string property, JsonElement cluster) =>
        Object(member, property) is { ValueKind: JsonValueKind.String } value && value.TryGetDateTimeOffset(out var time)
            && Object(cluster, "members_at") is { ValueKind: JsonValueKind.String } at && at.TryGetDateTimeOffset(out var now)
            ? Math.Max(0, (now - time).TotalSeconds)
            : null;

    private static string Seconds(double seconds) => seconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";

    private static string Duration(double seconds)
    {
        var span = TimeSpan.FromSeconds(Math.Floor(seconds));
        return span.TotalDays >= 1 ? $"{(int)span.TotalDays}d{span.Hours}h{span.Minutes}m" : span.TotalHours >= 1 ? $"{span.Hours}h{span.Minutes}m{span.Seconds}s" : $"{span.Minutes}m{span.Seconds}s";
    }
}
