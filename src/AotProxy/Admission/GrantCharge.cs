namespace AotProxy.Admission;

// What a grant charged the accounts, and how to settle it once usage is known.
internal readonly record struct GrantCharge(long PromptEstimate, double InputWeight, double OutputWeight, int TenantWeight, int ClassWeight)
{
    public double Admission => InputWeight * PromptEstimate;

    // Counters only grow: a prompt smaller than its estimate is not refunded.
    public double Settlement(long promptTokens, long completionTokens) =>
        Math.Max(0, InputWeight * (promptTokens - PromptEstimate)) + (OutputWeight * completionTokens);
}
