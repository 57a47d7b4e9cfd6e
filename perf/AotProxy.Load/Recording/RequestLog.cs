using System.Collections.Concurrent;
using System.Globalization;
using AotProxy.Load.Http;

namespace AotProxy.Load.Recording;

// One line per request (`--requests FILE`), for analyses the summary cannot give: served tokens
// per tenant per time window, what happened around a phase change. Kept in memory during the run
// and written after it, so the run does no file I/O; a line is ~90 bytes. New columns go at the
// end, so that readers by column name (perf/*_report.py) keep working.
internal sealed class RequestLog
{
    public const string Header = "mix,sent_s,ttft_s,end_s,status,error,prompt_tokens,completion_tokens,send_s,head_s,body_bytes";

    private readonly ConcurrentQueue<(int Mix, long SentTicks, SendOutcome Outcome)> _lines = new();

    public int Count => _lines.Count;

    // sentTicks: the request's intended send time, in Stopwatch ticks from the schedule's start.
    public void Add(int mix, long sentTicks, SendOutcome outcome) => _lines.Enqueue((mix, sentTicks, outcome));

    // Sorted by intended send time; times in seconds from the schedule's start (ttft from the
    // send, empty when there was none); mix by name; error as in the report's "errors". send_s:
    // when the send actually began (later than sent_s when the runner lagged); head_s: when the
    // response head arrived, empty when none did (a connect error, a timeout before the head).
    public async Task WriteCsvAsync(TextWriter writer, IReadOnlyList<string> mixNames, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(mixNames);
        await writer.WriteLineAsync(Header.AsMemory(), cancellationToken).ConfigureAwait(false);
        foreach (var (mix, sent, outcome) in _lines.OrderBy(l => l.SentTicks))
        {
            var line = string.Create(CultureInfo.InvariantCulture, $"{mixNames[mix]},{Seconds(sent)},{(outcome.TtftTicks < 0 ? "" : Seconds(outcome.TtftTicks))},{Seconds(sent + outcome.EndTicks)},{outcome.Status},{(outcome.Error is { } error ? ErrorKinds.Name(error) : "")},{outcome.PromptTokens},{outcome.CompletionTokens},{Seconds(sent + outcome.SendTicks)},{(outcome.HeadTicks < 0 ? "" : Seconds(sent + outcome.HeadTicks))},{outcome.BodyBytes}");
            await writer.WriteLineAsync(line.AsMemory(), cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Seconds(long ticks) =>
        ((double)ticks / System.Diagnostics.Stopwatch.Frequency).ToString("0.######", CultureInfo.InvariantCulture);
}
