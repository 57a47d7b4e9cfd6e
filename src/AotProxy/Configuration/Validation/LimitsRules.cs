namespace AotProxy.Configuration.Validation;

// [limits]: what a request reserves, and what a budget that cannot pay for max_tokens does.
internal static class LimitsRules
{
    public static LimitsModel Validate(ValidationContext context, LimitsConfig limits)
    {
        context.Unknown("limits", limits.Unknown);
        var reject = string.Equals(limits.BudgetOverrun, BudgetOverrunModes.Reject, StringComparison.Ordinal);
        if (!reject && !string.Equals(limits.BudgetOverrun, BudgetOverrunModes.Cap, StringComparison.Ordinal))
        {
            context.Error("limits.budget_overrun", $"unknown mode \"{limits.BudgetOverrun}\"; use \"{BudgetOverrunModes.Cap}\" or \"{BudgetOverrunModes.Reject}\"");
        }

        if (limits.DefaultMaxTokens is < 1 or > LimitsModel.MaxPerMinute)
        {
            context.Error("limits.default_max_tokens", $"must be 1 to {LimitsModel.MaxPerMinute} (got {limits.DefaultMaxTokens})");
            return LimitsModel.Default;
        }

        return new LimitsModel(limits.DefaultMaxTokens, reject);
    }
}
