namespace AotProxy.Configuration.Validation;

// [retries]: attempts, backoff and the retry budget.
internal static class RetryRules
{
    public static RetryModel Validate(ValidationContext context, RetryConfig retries)
    {
        context.Unknown("retries", retries.Unknown);
        context.AtLeast("retries.max_attempts", retries.MaxAttempts, 1);
        if (retries.MaxAttempts > 10)
        {
            context.Error("retries.max_attempts", $"must be at most 10 (got {retries.MaxAttempts}); more only hides a broken fleet");
        }

        var baseDelay = context.Positive("retries.backoff_base", retries.BackoffBase);
        var maxDelay = context.Positive("retries.backoff_max", retries.BackoffMax);
        if (maxDelay < baseDelay)
        {
            context.Error("retries.backoff_max", $"must not be shorter than retries.backoff_base ({retries.BackoffBase})");
        }

        var ratio = context.NonNegative("retries.budget_ratio", retries.BudgetRatio);
        if (ratio > 1)
        {
            context.Error("retries.budget_ratio", $"must be in 0..1 (got {ValidationContext.Number(retries.BudgetRatio)}); 0.2 lets retries add 20% load");
        }

        return new RetryModel(retries.MaxAttempts, baseDelay, maxDelay, ratio);
    }
}
