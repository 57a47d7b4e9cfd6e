using AotProxy.Limits;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// The 429 a request refused by rpm, tpm or max_in_flight gets: OpenAI's message and error shape,
// Retry-After, and the x-ratelimit-* headers.
internal static class RateLimitError
{
    public static Task WriteAsync(HttpContext context, in LimitResult result, string model)
    {
        var state = result.State!;
        RateLimitHeaders.Write(context.Response, state.Requests, state.Tokens);
        var (type, message, wait) = result.Refusal switch
        {
            // The fleet-wide minute is full, this replica's own is not: its Used would mislead.
            LimitRefusal.Requests when result.SharedWait > TimeSpan.Zero => ("requests", $"Rate limit reached for {model} in tenant {state.Name} on requests per min (RPM) across the cluster: Limit {state.Requests!.Capacity}, Requested 1. Please try again in {ResetDuration.Format(result.SharedWait)}.", result.SharedWait),
            LimitRefusal.Tokens when result.SharedWait > TimeSpan.Zero => ("tokens", $"Rate limit reached for {model} in tenant {state.Name} on tokens per min (TPM) across the cluster: Limit {state.Tokens!.Capacity}, Requested {result.Requested}. Please try again in {ResetDuration.Format(result.SharedWait)}.", result.SharedWait),
            LimitRefusal.InFlight when result.SharedWait > TimeSpan.Zero => ("requests", $"Too many concurrent requests for {model} in tenant {state.Name} (max_in_flight) across the cluster: Limit {state.MaxInFlight}, Requested 1. Please try again when one of your requests has finished.", TimeSpan.Zero),
            LimitRefusal.Requests => Over("requests", "requests per min (RPM)", state.Requests!, 1, model, state.Name),
            LimitRefusal.Tokens => Over("tokens", "tokens per min (TPM)", state.Tokens!, result.Requested, model, state.Name),
            // Not an OpenAI limit; a slot comes back when one of the tenant's requests ends, which
            // no clock predicts: 1 s, the shortest Retry-After.
            _ => ("requests", $"Too many concurrent requests for {model} in tenant {state.Name} (max_in_flight): Limit {state.MaxInFlight}, In flight {state.InFlight}, Requested 1. Please try again when one of your requests has finished.", TimeSpan.Zero),
        };
        return OpenAiError.RateLimited(context, type, message, ResetDuration.RetryAfterSeconds(wait));
    }

    private static (string Type, string Message, TimeSpan Wait) Over(string type, string what, MinuteLimit bucket, long requested, string model, string tenant)
    {
        if (requested > bucket.Capacity)
        {
            // No wait makes it fit; OpenAI words this case the same way.
            return (type, $"Request too large for {model} in tenant {tenant} on {what}: Limit {bucket.Capacity}, Requested {requested}. The input or output tokens must be reduced in order to run successfully.", bucket.TimeUntilFull());
        }

        var wait = bucket.TimeUntil(requested);
        return (type, $"Rate limit reached for {model} in tenant {tenant} on {what}: Limit {bucket.Capacity}, Used {bucket.Used}, Requested {requested}. Please try again in {ResetDuration.Format(wait)}.", wait);
    }
}
