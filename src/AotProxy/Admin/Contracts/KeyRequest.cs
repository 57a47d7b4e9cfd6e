namespace AotProxy.Admin.Contracts;

// POST /api/tenants/{name}/keys: every key optional. expires_at: RFC 3339, in the future; window:
// "HH:MM-HH:MM" (UTC; "22:00-06:00" wraps midnight), the time of day the key may be used.
internal sealed record KeyRequest
{
    public string? Label { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    public string? Window { get; init; }
}
