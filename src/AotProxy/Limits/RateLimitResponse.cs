using System.Globalization;
using AotProxy.Http;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Limits;

// OpenAI's rate-limit headers, on every response of a tenant with rpm or tpm (only those of the
// limits it has), and the 429 a refused request gets: OpenAI's message and error shape,
// Retry-After, and the same headers.
internal static class RateLimitResponse
{
    public const string LimitRequests = "x-ratelimit-limit-requests";
    public const string RemainingRequests = "x-ratelimit-remaining-requests";
    public const string ResetRequests = "x-ratelimit-reset-requests";
    public const string LimitTokens = "x-ratelimit-limit-tokens";
    public const string RemainingTokens = "x-ratelimit-remaining-tokens";
    public const string ResetTokens = "x-ratelimit-reset-tokens";

    // Set before the upstream's head is copied, which keeps them (ResponseHeaders).
    public static void WriteHeaders(HttpResponse response, MinuteLimit? requests, MinuteLimit? tokens)
    {
        var headers = response.Headers;
        if (requests is not null)
        {
            headers[LimitRequests] = requests.CapacityText;
            headers[RemainingRequests] = Text(requests.Remaining);
            headers[ResetRequests] = ResetDuration.Format(requests.TimeUntilFull());
        }

        if (tokens is not null)
        {
            headers[LimitTokens] = tokens.CapacityText;
            headers[RemainingTokens] = Text(tokens.Remaining);
            headers[ResetTokens] = ResetDuration.Format(tokens.TimeUntilFull());
        }
    }

    public static Task WriteRefusalAsync(HttpContext context, in LimitResult result, string model)
    {
        var state = result.State!;
        WriteHeaders(context.Response, state.Requests, state.Tokens);
        var (type, message, wait) = result.Refusal switch
        {
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

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
