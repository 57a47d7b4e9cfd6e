using AotProxy.Accounting;
using AotProxy.Ledger;

namespace AotProxy.Benchmarks;

// A chat request as the ledger sees it: its final row, and the row its admission journals.
internal static class LedgerSample
{
    private const string Model = "meta-llama/Llama-3.1-8B-Instruct";
    private static readonly DateTimeOffset Time = new(2026, 11, 15, 12, 0, 0, TimeSpan.Zero);
    private static readonly ModelPrice Price = new(150, 75, 600);
    private static readonly string[] Ids = [.. Enumerable.Range(0, 500).Select(i => $"req-{i:x8}")];

    public static RequestRecord Row(int i) =>
        new(Ids[i], Time, "acme", "0123abcd", "default", Model, Model, "gpu-0", new Usage(812, 256, 128), 0.4, 35.5, 2_150.25, 200, LedgerOutcome.Admitted, 310_000);

    public static RequestRecord Interrupted(int i) =>
        RequestRecord.Interrupted(Ids[i], Time, "acme", "0123abcd", "default", Model, Model, 812, TimeSpan.FromMilliseconds(0.4), Price);
}
