using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using AotProxy.Admin.Contracts;
using AotProxy.Http;
using AotProxy.Identity;
using AotProxy.Tenancy;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Admin;

// The admin API's tenants and keys (SPEC: POST /api/tenants, PATCH and DELETE /api/tenants/{name},
// GET and POST /api/tenants/{name}/keys, DELETE /api/tenants/{name}/keys/{id}, and
// POST .../keys/{id}/rotate) and GET /api/audit. Each change goes through TenantDirectory, which
// writes the store with its audit row and publishes the snapshot before this answers. The store
// is blocking I/O: changes and reads run on the thread pool, not the epoll thread.
internal sealed class TenantEndpoints(TenantDirectory? directory, TimeProvider time)
{
    // 64 KiB: a tenant with a long model allowlist fits many times over.
    private const int MaxBodyBytes = 64 * 1024;

    // GET /api/audit's default and largest page.
    private const int DefaultAuditRows = 100;
    private const int MaxAuditRows = 10_000;

    // POST /api/tenants
    public async Task CreateTenantAsync(HttpContext context, string actor)
    {
        if (await ReadAsync(context, AdminRequestJsonContext.Default.TenantRequest).ConfigureAwait(false) is not { } request)
        {
            return;
        }

        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        if (string.IsNullOrWhiteSpace(request.Name))
        {
            await Invalid(context, "name: a new tenant needs a non-empty name.").ConfigureAwait(false);
            return;
        }

        var tenant = Apply(StoredTenant.Defaults(request.Name, time.GetUtcNow().ToUnixTimeMilliseconds()), request);
        var result = await Task.Run(() => directory!.CreateTenant(tenant, actor)).ConfigureAwait(false);
        await AnswerAsync(context, result, 201, $"Tenant '{tenant.Name}' created.").ConfigureAwait(false);
    }

    // PATCH /api/tenants/{name}
    public async Task UpdateTenantAsync(HttpContext context, string name, string actor)
    {
        if (await ReadAsync(context, AdminRequestJsonContext.Default.TenantRequest).ConfigureAwait(false) is not { } request)
        {
            return;
        }

        if (request.Name is { } renamed && renamed != name)
        {
            await Invalid(context, "name: a tenant cannot be renamed; create the new one and delete this one.").ConfigureAwait(false);
            return;
        }

        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        var result = await Task.Run(() => directory!.UpdateTenant(name, t => Apply(t, request), actor)).ConfigureAwait(false);
        await AnswerAsync(context, result, 200, $"Tenant '{name}' updated.").ConfigureAwait(false);
    }

    // DELETE /api/tenants/{name}
    public async Task DeleteTenantAsync(HttpContext context, string name, string actor)
    {
        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        var result = await Task.Run(() => directory!.DeleteTenant(name, actor)).ConfigureAwait(false);
        await AnswerAsync(context, result, 200, $"Tenant '{name}' and its keys deleted.").ConfigureAwait(false);
    }

    // GET /api/tenants/{name}/keys: never the key.
    public Task ListKeysAsync(HttpContext context, string tenant)
    {
        if (Unavailable(context) is { } unavailable)
        {
            return unavailable;
        }

        return AdminHandler.JsonAsync(context, 200, Keys(tenant), AdminJsonContext.Default.KeyReportArray);
    }

    // The issued keys, never the keys themselves: one tenant's, or every tenant's (null; the live
    // console's); none without a tenant store.
    public KeyReport[] Keys(string? tenant = null)
    {
        if (directory is null)
        {
            return [];
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        return [.. directory.Contents.Keys.Where(k => tenant is null || k.Tenant == tenant).Select(k => new KeyReport(
            k.Id,
            k.Tenant,
            k.Label,
            k.IsRevoked ? "revoked" : now >= k.NotAfterMs ? "expired" : "active",
            Time(k.CreatedMs),
            TimeOrNull(k.ExpiresAtMs),
            k.Window.ToString(),
            TimeOrNull(k.ValidUntilMs),
            TimeOrNull(k.RevokedAtMs),
            directory.LastUsed(k) is { } second ? DateTimeOffset.FromUnixTimeSeconds(second) : null))];
    }

    // POST /api/tenants/{name}/keys
    public async Task IssueKeyAsync(HttpContext context, string tenant, string actor)
    {
        if (await ReadAsync(context, AdminRequestJsonContext.Default.KeyRequest).ConfigureAwait(false) is not { } request)
        {
            return;
        }

        if (!KeyWindow.TryParse(request.Window, out var window))
        {
            await Invalid(context, $"window: \"{request.Window}\" is not \"HH:MM-HH:MM\" (UTC, start and end different; \"22:00-06:00\" wraps midnight).").ConfigureAwait(false);
            return;
        }

        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        IssuedSecret? issued = null;
        var result = await Task.Run(() => directory!.IssueKey(tenant, request.Label ?? "", request.ExpiresAt, window, actor, out issued)).ConfigureAwait(false);
        await IssuedAsync(context, result, issued).ConfigureAwait(false);
    }

    // DELETE /api/tenants/{name}/keys/{id}
    public async Task RevokeKeyAsync(HttpContext context, string tenant, string id, string actor)
    {
        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        var result = await Task.Run(() => directory!.RevokeKey(tenant, id, actor)).ConfigureAwait(false);
        await AnswerAsync(context, result, 200, $"Key '{id}' of tenant '{tenant}' revoked.").ConfigureAwait(false);
    }

    // POST /api/tenants/{name}/keys/{id}/rotate
    public async Task RotateKeyAsync(HttpContext context, string tenant, string id, string actor)
    {
        if (await ReadAsync(context, AdminRequestJsonContext.Default.RotateRequest).ConfigureAwait(false) is not { } request)
        {
            return;
        }

        if (request.ValidUntil is not { } validUntil)
        {
            await Invalid(context, "valid_until: required, the old key's last moment (RFC 3339, e.g. \"2026-12-01T00:00:00Z\"; now ends it at once).").ConfigureAwait(false);
            return;
        }

        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        IssuedSecret? issued = null;
        var result = await Task.Run(() => directory!.RotateKey(tenant, id, validUntil, request.Label, actor, out issued)).ConfigureAwait(false);
        await IssuedAsync(context, result, issued).ConfigureAwait(false);
    }

    // GET /api/audit?since=2026-11-01&limit=100: newest first.
    public async Task AuditAsync(HttpContext context)
    {
        if (Unavailable(context) is { } unavailable)
        {
            await unavailable.ConfigureAwait(false);
            return;
        }

        var query = context.Request.Query;
        var since = DateTimeOffset.UnixEpoch;
        if (query["since"].ToString() is { Length: > 0 } sinceText
            && !DateTimeOffset.TryParse(sinceText, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out since))
        {
            await OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_query", $"since: \"{sinceText}\" is not a date or an RFC 3339 time.").ConfigureAwait(false);
            return;
        }

        var limit = DefaultAuditRows;
        if (query["limit"].ToString() is { Length: > 0 } limitText
            && (!int.TryParse(limitText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxAuditRows))
        {
            await OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_query", $"limit: must be 1 to {MaxAuditRows} (got \"{limitText}\").").ConfigureAwait(false);
            return;
        }

        try
        {
            var rows = await Task.Run(() => directory!.ReadAudit(since, limit)).ConfigureAwait(false);
            AuditReport[] report = [.. rows.Select(r => new AuditReport(Time(r.AtMs), r.Actor, r.Action, r.Target, r.Detail))];
            await AdminHandler.JsonAsync(context, 200, report, AdminJsonContext.Default.AuditReportArray).ConfigureAwait(false);
        }
        catch (TenantStoreException ex)
        {
            await OpenAiError.WriteAsync(context, 503, "server_error", "store_unavailable", ex.Message).ConfigureAwait(false);
        }
    }

    // The audit row of an admin change the store does not make (TenantDirectory.Record); nothing
    // without a store.
    public Task RecordAsync(string action, string target, string actor, string detail = "") =>
        directory is null ? Task.CompletedTask : Task.Run(() => directory.Record(action, target, actor, detail));

    // Only the keys the request gives replace the tenant's.
    private static StoredTenant Apply(StoredTenant tenant, TenantRequest request) => tenant with
    {
        Class = request.Class ?? tenant.Class,
        Weight = request.Weight ?? tenant.Weight,
        Models = request.Models is { } models ? [.. models] : tenant.Models,
        Rpm = request.Rpm ?? tenant.Rpm,
        Tpm = request.Tpm ?? tenant.Tpm,
        MaxInFlight = request.MaxInFlight ?? tenant.MaxInFlight,
        BudgetTokens = request.BudgetTokens ?? tenant.BudgetTokens,
        MonthlyBudgetTokens = request.MonthlyBudgetTokens ?? tenant.MonthlyBudgetTokens,
        BudgetUsd = request.BudgetUsd ?? tenant.BudgetUsd,
        MonthlyBudgetUsd = request.MonthlyBudgetUsd ?? tenant.MonthlyBudgetUsd,
        Environment = request.Environment ?? tenant.Environment,
        CacheSalt = request.CacheSalt ?? tenant.CacheSalt,
        StreamBudgetCutoff = request.StreamBudgetCutoff ?? tenant.StreamBudgetCutoff,
        ResponseCache = request.ResponseCache ?? tenant.ResponseCache,
    };

    private Task? Unavailable(HttpContext context) => directory is null
        ? OpenAiError.WriteAsync(context, 404, "invalid_request_error", "store_disabled", "The tenant store is off: it lives in the ledger's file, and ledger.path = \"\".")
        : null;

    private static Task Invalid(HttpContext context, string message) =>
        OpenAiError.WriteAsync(context, 400, "invalid_request_error", "invalid_request", message);

    private static Task AnswerAsync(HttpContext context, TenancyResult result, int status, string message) => result.Outcome switch
    {
        TenancyOutcome.Done => AdminHandler.JsonAsync(context, status, new MessageResponse(message), AdminJsonContext.Default.MessageResponse),
        _ => Failed(context, result),
    };

    private static Task IssuedAsync(HttpContext context, TenancyResult result, IssuedSecret? issued)
    {
        if (!result.IsDone || issued is null)
        {
            return Failed(context, result);
        }

        var key = issued.Key;
        var response = new IssuedKeyResponse(key.Id, issued.Secret, key.Tenant, key.Label, Time(key.CreatedMs), TimeOrNull(key.ExpiresAtMs), key.Window.ToString());
        return AdminHandler.JsonAsync(context, 201, response, AdminJsonContext.Default.IssuedKeyResponse);
    }

    private static Task Failed(HttpContext context, TenancyResult result) => result.Outcome switch
    {
        TenancyOutcome.Invalid => Invalid(context, result.Message),
        TenancyOutcome.NotFound => OpenAiError.WriteAsync(context, 404, "invalid_request_error", "not_found", result.Message),
        TenancyOutcome.Conflict => OpenAiError.WriteAsync(context, 409, "invalid_request_error", "conflict", result.Message),
        _ => OpenAiError.WriteAsync(context, 503, "server_error", "store_unavailable", result.Message),
    };

    // The body as T: null when it was answered already (too large, not JSON, an unknown key). An
    // empty body is {}.
    private static async Task<T?> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo)
        where T : class, new()
    {
        var reader = context.Request.BodyReader;
        while (true)
        {
            var read = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
            if (read.Buffer.Length > MaxBodyBytes)
            {
                reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                await OpenAiError.TooLarge(context, MaxBodyBytes).ConfigureAwait(false);
                return null;
            }

            if (!read.IsCompleted)
            {
                reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                continue;
            }

            try
            {
                return read.Buffer.IsEmpty ? new T() : Deserialize(read.Buffer, typeInfo) ?? new T();
            }
            catch (JsonException ex)
            {
                await Invalid(context, $"The body is not the JSON this path takes: {ex.Message}").ConfigureAwait(false);
                return null;
            }
            finally
            {
                reader.AdvanceTo(read.Buffer.End);
            }
        }
    }

    private static T? Deserialize<T>(ReadOnlySequence<byte> body, JsonTypeInfo<T> typeInfo)
    {
        var json = new Utf8JsonReader(body);
        return JsonSerializer.Deserialize(ref json, typeInfo);
    }

    private static DateTimeOffset Time(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs);

    private static DateTimeOffset? TimeOrNull(long? unixMs) => unixMs is { } ms ? Time(ms) : null;
}
