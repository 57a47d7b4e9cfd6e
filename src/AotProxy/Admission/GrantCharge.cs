namespace AotProxy.Admission;

// What a grant charged the accounts, and how to settle it once usage is known. TenantLifts and
// ClassLifts are the accounts' Lifts as they stood before the charge (At): a refund of a charge
// that a later lift forgave is held to the floor (FairShareAccount.Refund). OnFleet: [cluster], the
// request took its turn on the fleet's workers, which charged the fleet's counter (SharedVtc).
// Lookahead: the completion tokens prepaid at the grant, [scheduler] lookahead x max_tokens.
internal readonly record struct GrantCharge(
    long PromptEstimate,
    double InputWeight,
    double OutputWeight,
    int TenantWeight,
    int ClassWeight,
    long TenantLifts = 0,
    long ClassLifts = 0,
    bool OnFleet = false,
    double Lookahead = 0)
{
    public double Admission => Charged(0);

    // What the accounts hold for this request once `streamedChunks` content chunks were relayed
    // (StreamedCharge): the prompt estimate, and the output streamed, of which the lookahead was
    // prepaid at the grant (a chunk within it charges nothing more).
    public double Charged(long streamedChunks) =>
        (InputWeight * PromptEstimate) + (OutputWeight * Math.Max(Math.Max(streamedChunks, 0), Lookahead));

    // The usage's cost: input_weight x prompt + output_weight x completion.
    public double Cost(long promptTokens, long completionTokens) =>
        (InputWeight * Math.Max(promptTokens, 0)) + (OutputWeight * Math.Max(completionTokens, 0));

    // The cost less what was charged: negative when that was high (the estimate, the lookahead),
    // a refund. Charged + Settlement = Cost, so the total is exact however the chunks went.
    public double Settlement(long promptTokens, long completionTokens, long streamedChunks = 0) =>
        Cost(promptTokens, completionTokens) - Charged(streamedChunks);

    // Read before the accounts are charged: a lift between the read and the charge only makes
    // the refund more careful, never less.
    public GrantCharge At(FairShareAccount tenant, FairShareAccount classAccount) =>
        this with { TenantLifts = tenant.Lifts, ClassLifts = classAccount.Lifts };
}
