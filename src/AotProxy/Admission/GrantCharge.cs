namespace AotProxy.Admission;

// What a grant charged the accounts, and how to settle it once usage is known. TenantLifts and
// ClassLifts are the accounts' Lifts as they stood before the charge (At): a refund of a charge
// that a later lift forgave is held to the floor (FairShareAccount.Refund). OnFleet: [cluster], the
// request took its turn on the fleet's workers, which charged the fleet's counter (SharedVtc).
internal readonly record struct GrantCharge(
    long PromptEstimate,
    double InputWeight,
    double OutputWeight,
    int TenantWeight,
    int ClassWeight,
    long TenantLifts = 0,
    long ClassLifts = 0,
    bool OnFleet = false)
{
    public double Admission => InputWeight * PromptEstimate;

    // The usage's cost, input_weight x prompt + output_weight x completion, less what admission
    // charged and the chunks the stream was charged as they were relayed (StreamedCharge):
    // negative when those were high, a refund.
    public double Settlement(long promptTokens, long completionTokens, long streamedChunks = 0) =>
        (InputWeight * (Math.Max(promptTokens, 0) - PromptEstimate))
        + (OutputWeight * (Math.Max(completionTokens, 0) - Math.Max(streamedChunks, 0)));

    // Read before the accounts are charged: a lift between the read and the charge only makes
    // the refund more careful, never less.
    public GrantCharge At(FairShareAccount tenant, FairShareAccount classAccount) =>
        this with { TenantLifts = tenant.Lifts, ClassLifts = classAccount.Lifts };
}
