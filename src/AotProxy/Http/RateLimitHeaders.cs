using System.Globalization;
using AotProxy.Limits;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// OpenAI's rate-limit headers, on every response of a tenant with rpm or tpm (only those of the
// limits it has): on a 429 (RateLimitError, QuotaError) and on every request that passed.
internal static class RateLimitHeaders
{
    public const string LimitRequests = "x-ratelimit-limit-requests";
    public const string RemainingRequests = "x-ratelimit-remaining-requests";
    public const string ResetRequests = "x-ratelimit-reset-requests";
    public const string LimitTokens = "x-ratelimit-limit-tokens";
    public const string RemainingTokens = "x-ratelimit-remaining-tokens";
    public const string ResetTokens = "x-ratelimit-reset-tokens";

    // Set before the upstream's head is copied, which keeps them (Forwarding/ResponseHeaders).
    public static void Write(HttpResponse response, MinuteLimit? requests, MinuteLimit? tokens)
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

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
