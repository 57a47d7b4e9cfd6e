using System.Globalization;
using System.Text;
using AotProxy.Load.Recording;

namespace AotProxy.Load.Reporting;

// The report as Markdown, for stdout and DIR/<profile>.md: times in milliseconds, which is how
// people read LLM latencies; the JSON keeps microseconds.
internal static class MarkdownReport
{
    public static string Render(LoadReport report, string description)
    {
        ArgumentNullException.ThrowIfNull(report);
        var md = new StringBuilder();
        Line(md, $"# Load report: {report.Profile}");
        md.AppendLine();
        if (!string.IsNullOrWhiteSpace(description))
        {
            Line(md, $"{description.Trim()}");
            md.AppendLine();
        }

        Line(md, $"Target {report.Target}, started {report.StartedAt:yyyy-MM-dd HH:mm:ss}Z, {report.DurationS:0.0} s. **{(report.Passed ? "PASSED" : "FAILED")}**");
        md.AppendLine();
        md.AppendLine("| scenario | requests | ok | errors | error rate | achieved rps | output tok/s | late sends | max schedule lag | prompt tok | completion tok |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in report.Scenarios)
        {
            var errors = s.Errors.Values.Sum();
            Line(md, $"| {s.Name} | {s.Requests} | {s.Ok} | {errors} | {Percent(s.ErrorRate)} | {s.AchievedRps:0.0} | {s.OutputTokensPerS:0.0} | {s.LateSends} | {Ms(s.MaxScheduleLagUs)} ms | {s.Tokens.Prompt} | {s.Tokens.Completion} |");
        }

        md.AppendLine();
        md.AppendLine("| scenario | metric (ms) | p50 | p90 | p99 | p99.9 | max | mean | count |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var s in report.Scenarios)
        {
            Row(md, s.Name, "latency", s.LatencyUs);
            Row(md, s.Name, "ttft", s.TtftUs);
            if (s.ItlUs.Count > 0)
            {
                Row(md, s.Name, "inter-token", s.ItlUs);
            }
        }

        var whole = report.Scenarios[0];
        if (whole.Errors.Count > 0 || whole.StatusCodes.Count > 0)
        {
            md.AppendLine();
            var parts = whole.Errors.Select(e => e.Key == ErrorKinds.Name(ErrorKind.Dropped) ? $"{ErrorKinds.DroppedDescription} {e.Value}" : $"{e.Key} {e.Value}");
            Line(md, $"Errors: {(whole.Errors.Count == 0 ? "none" : string.Join(", ", parts))}. Status codes: {string.Join(", ", whole.StatusCodes.Select(c => $"{c.Key} x{c.Value}"))}.");
        }

        if (whole.Thresholds.Count > 0)
        {
            md.AppendLine();
            md.AppendLine("| threshold | limit | actual | result |");
            md.AppendLine("|---|---:|---:|---|");
            foreach (var t in whole.Thresholds)
            {
                var (limit, actual) = t.Name.EndsWith("_us", StringComparison.Ordinal)
                    ? ($"{Ms(t.Limit)} ms", $"{Ms(t.Actual)} ms")
                    : (Percent(t.Limit), Percent(t.Actual));
                Line(md, $"| {t.Name} | {limit} | {actual} | {(t.Passed ? "pass" : "**FAIL**")} |");
            }
        }

        return md.ToString();
    }

    private static void Row(StringBuilder md, string scenario, string metric, HistogramSummary h) =>
        Line(md, $"| {scenario} | {metric} | {Ms(h.P50)} | {Ms(h.P90)} | {Ms(h.P99)} | {Ms(h.P999)} | {Ms(h.Max)} | {Ms(h.Mean)} | {h.Count} |");

    private static string Ms(double microseconds) => (microseconds / 1000).ToString("0.00", CultureInfo.InvariantCulture);

    private static string Percent(double fraction) => (fraction * 100).ToString("0.###", CultureInfo.InvariantCulture) + "%";

    private static void Line(StringBuilder md, FormattableString text) => md.AppendLine(text.ToString(CultureInfo.InvariantCulture));
}
