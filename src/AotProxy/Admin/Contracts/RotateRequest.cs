namespace AotProxy.Admin.Contracts;

// POST /api/tenants/{name}/keys/{id}/rotate: valid_until (RFC 3339, now or later; required) is
// the old key's last moment; the new key keeps the old one's expiry and window, and its label
// unless one is given.
internal sealed record RotateRequest
{
    public DateTimeOffset? ValidUntil { get; init; }

    public string? Label { get; init; }
}
