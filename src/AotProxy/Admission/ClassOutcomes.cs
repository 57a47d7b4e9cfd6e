namespace AotProxy.Admission;

// One class's requests to a pool over the last protection_window, and the TTFT baseline learned
// from its own first tokens: each class is judged against what is normal for its requests (free's
// long prefills are not enterprise's short ones), so the mix of classes served cancels out.
internal sealed class ClassOutcomes(string name)
{
    private double _baseline;

    public string Name { get; } = name;

    public FleetOutcomes Outcomes { get; } = new();

    // Its streamed requests holding a slot that still await their first token.
    public PendingFirstTokens Pending { get; } = new();

    // The buckets learned into the baseline since the window that set it (ClassProtection.Learn).
    public int Learned { get; set; }

    // Seconds; 0 until a window had protection_min_samples of the class's first tokens.
    public double BaselineSeconds
    {
        get => Volatile.Read(ref _baseline);
        set => Volatile.Write(ref _baseline, value);
    }
}
