using AotProxy.Load.Profiles;
using AotProxy.Load.Recording;
using AotProxy.Load.Scheduling;

namespace AotProxy.Load.Reporting;

// RunResult -> LoadReport, checking the profile's thresholds against the whole run.
internal static class ReportBuilder
{
    public static LoadReport Build(RunResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var profile = result.Profile;
        var thresholds = Check(profile.Thresholds, result.Total);
        var scenarios = new List<ScenarioReport> { Scenario(profile.Scenario, result.Total, result.DurationSeconds, thresholds) };
        if (profile.Mix.Length > 1)
        {
            for (var i = 0; i < profile.Mix.Length; i++)
            {
                scenarios.Add(Scenario($"{profile.Scenario}/{profile.Mix[i].Name}", result.ByMix[i], result.DurationSeconds, []));
            }
        }

        return new LoadReport(
            profile.Name,
            result.Target.AbsoluteUri,
            result.StartedAt,
            Math.Round(result.DurationSeconds, 3),
            scenarios,
            thresholds.All(t => t.Passed));
    }

    public static IReadOnlyList<ThresholdResult> Check(Thresholds thresholds, ScenarioRecorder total)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        ArgumentNullException.ThrowIfNull(total);
        var results = new List<ThresholdResult>();
        if (thresholds.P99Latency is { } latency)
        {
            var actual = total.Latency.ValueAtPercentile(99);
            results.Add(new ThresholdResult("p99_latency_us", Microseconds(latency), actual, actual <= Microseconds(latency)));
        }

        if (thresholds.P99Ttft is { } ttft)
        {
            var actual = total.Ttft.ValueAtPercentile(99);
            results.Add(new ThresholdResult("p99_ttft_us", Microseconds(ttft), actual, actual <= Microseconds(ttft)));
        }

        if (thresholds.MaxErrorRate is { } maxErrorRate)
        {
            // No request at all is a failure too: a run that sent nothing proved nothing.
            var actual = total.Requests == 0 ? 1.0 : (double)total.ErrorCount / total.Requests;
            results.Add(new ThresholdResult("error_rate", maxErrorRate, Math.Round(actual, 6), total.Requests > 0 && actual <= maxErrorRate));
        }

        return results;
    }

    private static ScenarioReport Scenario(string name, ScenarioRecorder recorder, double seconds, IReadOnlyList<ThresholdResult> thresholds) => new(
        name,
        recorder.Requests,
        recorder.Ok,
        recorder.Errors(),
        recorder.StatusCodes(),
        seconds > 0 ? Math.Round(recorder.Ok / seconds, 2) : 0,
        recorder.Requests == 0 ? 0 : Math.Round((double)recorder.ErrorCount / recorder.Requests, 6),
        seconds > 0 ? Math.Round(recorder.CompletionTokens / seconds, 1) : 0,
        recorder.LateSends,
        recorder.MaxLagMicroseconds,
        recorder.Latency.Summarize(),
        recorder.Ttft.Summarize(),
        recorder.Itl.Summarize(),
        new TokenCounts(recorder.PromptTokens, recorder.CompletionTokens),
        thresholds);

    private static double Microseconds(TimeSpan value) => value.Ticks / (TimeSpan.TicksPerMillisecond / 1000.0);
}
