namespace AotProxy.Accounting;

// What one request may use, reserved once at the limit stage (Limits/LimitStage) and read by every
// stage that charges it: TPM and the budgets, fair share (admission charges the prompt), a paced
// worker's tpm (the total), the journal's interrupted row and a response that ends without usage
// (both estimated from the prompt). Prompt: the inspector's estimate from the prompt's text.
// Completion: max_tokens, else limits.default_max_tokens, 0 for an embedding; lowered to what a
// budget can pay for when limits.budget_overrun = "cap" (Capped), which is also the max_tokens the
// worker gets.
internal readonly record struct TokenReservation(long Prompt, long Completion, bool Capped = false)
{
    public long Total => Prompt + Completion;
}
