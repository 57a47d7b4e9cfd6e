using System.Collections.Concurrent;
using AotProxy.Configuration;

namespace AotProxy.Limits;

// The limit stage: each limited tenant's state by name, kept across reloads (as WorkerRegistry
// keeps worker states), and the check a request passes before admission. A tenant without
// limits (rpm = tpm = max_in_flight = 0) never gets here: no lookup, no counter.
internal sealed class TenantLimits(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, TenantLimitState> _tenants = new(StringComparer.Ordinal);
    private readonly Lock _applyLock = new();

    // null for a tenant without limits.
    public TenantLimitState? Of(string tenant) => _tenants.GetValueOrDefault(tenant);

    // At startup and on every applied reload: same name, the state carries over with the new
    // limits; a tenant gone or without limits any more loses its state (requests still holding
    // it settle on it).
    public void Apply(GatewaySnapshot snapshot)
    {
        lock (_applyLock)
        {
            var limited = new HashSet<string>(StringComparer.Ordinal);
            foreach (var tenant in snapshot.Tenants)
            {
                if (tenant.HasLimits)
                {
                    limited.Add(tenant.Name);
                    GetOrCreate(tenant).Update(tenant, time);
                }
            }

            foreach (var name in _tenants.Keys)
            {
                if (!limited.Contains(name))
                {
                    _tenants.TryRemove(name, out _);
                }
            }
        }
    }

    // In-flight first, then one request, then the token reservation; what a refusal took is
    // given back at once, so a refused request costs the tenant nothing.
    public LimitResult TryAcquire(TenantModel tenant, long tokens)
    {
        if (!tenant.HasLimits)
        {
            return default;
        }

        // A request on a snapshot newer than the last Apply (a reload in progress) creates the state.
        var state = GetOrCreate(tenant);
        if (!state.TryEnter())
        {
            return new LimitResult(LimitRefusal.InFlight, default, state, tokens);
        }

        var requests = state.Requests;
        var bucket = state.Tokens;
        var now = requests is null && bucket is null ? 0 : time.GetTimestamp();
        if (requests is not null && !requests.TryTake(1, now))
        {
            state.Exit();
            return new LimitResult(LimitRefusal.Requests, default, state, tokens);
        }

        if (bucket is not null && !bucket.TryTake(tokens, now))
        {
            requests?.GiveBack(1, now);
            state.Exit();
            return new LimitResult(LimitRefusal.Tokens, default, state, tokens);
        }

        return new LimitResult(LimitRefusal.None, new LimitLease(state, requests, bucket, bucket is null ? 0 : tokens, now), state, tokens);
    }

    // Created with its limits in place, so that no request ever sees a state without them.
    private TenantLimitState GetOrCreate(TenantModel tenant) =>
        _tenants.GetOrAdd(tenant.Name, static (name, context) =>
        {
            var state = new TenantLimitState(name);
            state.Update(context.Tenant, context.Time);
            return state;
        }, (Tenant: tenant, Time: time));
}
