using System.Globalization;
using AotProxy.Limits;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// The 429 insufficient_quota a budget refusal gets: which budget, what it has left, and for a
// monthly one when it resets, with Retry-After until then. A lifetime budget refills only when
// an operator raises it: its Retry-After is a day (LifetimeRetryAfterSeconds), the SPEC's
// Retry-After on every 429 at the time scale such a change takes (OpenAI's SDKs honour a
// Retry-After only up to 60 s and back off on their own beyond it). The x-ratelimit-* headers are the RPM/TPM ones, as on every response
// of a tenant with rpm or tpm.
internal static class QuotaError
{
    public const int LifetimeRetryAfterSeconds = 86_400;

    public static Task WriteAsync(HttpContext context, in LimitResult result, string model, TimeProvider time)
    {
        var state = result.State!;
        RateLimitHeaders.Write(context.Response, state.Requests, state.Tokens);
        var check = result.Budget;
        var (key, what) = Describe(check.Kind);
        var left = BudgetAmount.Format(check.Kind, check.Left);
        var budget = state.Budget?.Budget;
        var limit = budget is null ? "?" : BudgetAmount.Format(check.Kind, check.Kind switch
        {
            BudgetKind.Tokens => budget.Tokens,
            BudgetKind.MonthlyTokens => budget.MonthlyTokens,
            BudgetKind.Usd => budget.Nanos,
            _ => budget.MonthlyNanos,
        });
        var message = check.Overrun
            ? $"You exceeded your current quota: the {what} of tenant {state.Name} ({key} {limit}) has {left} left, less than this request to {model} may use with its max_tokens ({result.Requested} tokens with the prompt), and limits.budget_overrun is \"reject\". Lower max_tokens."
            : $"You exceeded your current quota: the {what} of tenant {state.Name} ({key} {limit}) is used up ({left} left, not enough for this request's prompt to {model}).";
        var retryAfter = LifetimeRetryAfterSeconds;
        if (check.Kind is BudgetKind.MonthlyTokens or BudgetKind.MonthlyUsd)
        {
            var now = time.GetUtcNow();
            var reset = BudgetMonth.StartOf(now).AddMonths(1);
            message += $" It resets at {reset.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}.";
            retryAfter = ResetDuration.RetryAfterSeconds(reset - now);
        }

        return OpenAiError.InsufficientQuota(context, message, retryAfter);
    }

    private static (string Key, string What) Describe(BudgetKind kind) => kind switch
    {
        BudgetKind.Tokens => ("budget_tokens", "token budget"),
        BudgetKind.MonthlyTokens => ("monthly_budget_tokens", "monthly token budget"),
        BudgetKind.Usd => ("budget_usd", "spend budget"),
        _ => ("monthly_budget_usd", "monthly spend budget"),
    };
}
