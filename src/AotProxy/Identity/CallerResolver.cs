using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using AotProxy.Configuration;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Identity;

// The identify stage: request -> Caller, built once per snapshot (GatewaySnapshotFactory).
//  1. Authorization: Bearer T, or (apiKeyHeader: /v1/messages, as Anthropic's clients send it)
//     x-api-key: T. T shaped like a JWT while [jwt] is on: a JWT; otherwise an API key.
//     A header that is present but wrong is a 401, never a fall-back to anonymous.
//  2. No Authorization, and trusted headers from a trusted source: x-tenant names the tenant.
//  3. Neither: the implicit tenant "anonymous" in auth.default_class, when set; else a 401.
// Then, from a trusted source only, x-customer-tier overrides the class and x-priority the priority,
// whoever the caller is. From any other source the three headers are ignored (and HeaderPolicy
// never forwards them upstream).
internal sealed class CallerResolver
{
    public const string AnonymousTenantName = "anonymous";
    public const string TenantHeader = "x-tenant";
    public const string TierHeader = "x-customer-tier";
    public const string PriorityHeader = "x-priority";
    public const string ApiKeyHeader = "x-api-key";

    private readonly ApiKeyIndex _keys;
    private readonly JwtValidator? _jwt;
    private readonly FrozenDictionary<string, TenantModel> _tenants;
    private readonly FrozenDictionary<string, ClassModel> _classes;
    private readonly ImmutableArray<IPNetwork> _trustedSources; // empty: trusted headers are off
    private readonly Caller? _anonymous;
    private readonly KeyDigestCache _digests = new(); // this snapshot's: a reload starts afresh

    // Built by GatewaySnapshotFactory with the snapshot's indexes; jwt: null while [jwt] is off.
    public CallerResolver(ApiKeyIndex keys, FrozenDictionary<string, TenantModel> tenants, FrozenDictionary<string, ClassModel> classes, AuthModel auth, JwtValidator? jwt)
    {
        _keys = keys;
        _tenants = tenants;
        _classes = classes;
        _jwt = jwt;
        _trustedSources = auth.TrustedHeaders ? auth.TrustedSources : [];
        if (auth.DefaultClass.Length > 0 && classes.TryGetValue(auth.DefaultClass, out var defaultClass))
        {
            // A [[tenants]] entry named "anonymous" lends its models and limits to unauthenticated
            // traffic; without one, it may use every model, unlimited (the class still caps it).
            var tenant = _tenants.GetValueOrDefault(AnonymousTenantName)
                ?? new TenantModel(AnonymousTenantName, defaultClass.Name, 1, [], ["*"], 0, 0, 0);
            _anonymous = new Caller(tenant, defaultClass, defaultClass.Priority, tenant.Environment, IdentitySource.Anonymous);
        }
    }

    public bool JwtEnabled => _jwt is not null;

    public IdentifyResult Identify(HttpContext context, TimeProvider time, bool apiKeyHeader = false)
    {
        var headers = context.Request.Headers;
        var trusted = !_trustedSources.IsEmpty && IsTrusted(context.Connection.RemoteIpAddress);
        TenantModel? tenant;
        ClassModel? cls = null;
        IdentitySource source;
        var keyId = string.Empty;
        var authorization = headers.Authorization;
        var apiKey = apiKeyHeader && authorization.Count == 0 ? headers[ApiKeyHeader] : default;
        if (authorization.Count > 0 || apiKey.Count > 0)
        {
            var token = authorization.Count == 1 ? ApiKeyIndex.BearerToken(authorization[0])
                : apiKey.Count == 1 ? apiKey[0].AsSpan().Trim()
                : default;
            if (_jwt is not null && JwtValidator.LooksLikeJwt(token))
            {
                var failure = _jwt.Validate(token, time.GetUtcNow(), out tenant, out cls);
                if (failure != IdentifyFailure.None)
                {
                    return IdentifyResult.Fail(failure);
                }

                source = IdentitySource.Jwt;
            }
            else
            {
                // A bearer key's digest by its header instance: a keep-alive connection's next
                // request brings the same one (KeyDigestCache).
                IdentifyFailure failure;
                tenant = authorization.Count == 1 && ApiKeyIndex.IsPresentable(token)
                    ? _keys.FindDigest(_digests.Of(authorization[0]!), time, out keyId, out failure)
                    : _keys.Find(token, time, out keyId, out failure);
                if (tenant is null)
                {
                    return IdentifyResult.Fail(failure);
                }

                source = IdentitySource.ApiKey;
            }
        }
        else if (trusted && headers.TryGetValue(TenantHeader, out var named))
        {
            if (named.Count != 1 || named[0] is not { } name || !_tenants.TryGetValue(name.Trim(), out tenant))
            {
                return IdentifyResult.Fail(IdentifyFailure.InvalidTenantHeader);
            }

            source = IdentitySource.TrustedHeaders;
        }
        else if (_anonymous is { } anonymous)
        {
            if (!trusted)
            {
                return new IdentifyResult(anonymous, IdentifyFailure.None);
            }

            tenant = anonymous.Tenant;
            cls = anonymous.Class;
            source = IdentitySource.Anonymous;
        }
        else
        {
            return IdentifyResult.Fail(IdentifyFailure.MissingCredentials);
        }

        cls ??= ClassOf(tenant!);
        var priority = cls.Priority;
        var priorityFromHeader = false;
        if (trusted)
        {
            if (headers.TryGetValue(TierHeader, out var tier))
            {
                if (tier.Count != 1 || tier[0] is not { } tierName || !_classes.TryGetValue(tierName.Trim(), out cls))
                {
                    return IdentifyResult.Fail(IdentifyFailure.InvalidTierHeader);
                }

                priority = cls.Priority;
            }

            if (headers.TryGetValue(PriorityHeader, out var level))
            {
                if (level.Count != 1
                    || !int.TryParse(level[0], NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out priority)
                    || priority > ClassModel.MaxPriority)
                {
                    return IdentifyResult.Fail(IdentifyFailure.InvalidPriorityHeader);
                }

                priorityFromHeader = true;
            }
        }

        return new IdentifyResult(new Caller(tenant!, cls, priority, tenant!.Environment, source, priorityFromHeader, keyId), IdentifyFailure.None);
    }

    public bool IsTrusted(IPAddress? remote) => TrustedNetwork.Contains(_trustedSources, remote);

    // Validated to exist; the fallback only serves snapshots built by hand in tests.
    private ClassModel ClassOf(TenantModel tenant) =>
        _classes.GetValueOrDefault(tenant.Class) ?? ClassModel.Default;
}
