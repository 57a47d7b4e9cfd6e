using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Limits;

// The limit stage on a manual clock: one request token, a TPM reservation settled to the usage,
// the in-flight count, and state that survives reloads.
public class TenantLimitsTests
{
    private readonly FakeTimeProvider _clock = new();

    [Fact]
    public void TryAcquire_TenantWithoutLimits_HoldsNothing()
    {
        var limits = Limits(Tenant());

        var result = limits.TryAcquire(Tenant(), 500);

        Assert.True(result.IsAllowed);
        Assert.Null(result.State);
        Assert.Null(limits.Of("acme"));
        result.Lease.Settle(admitted: true, new Usage(10, 10)); // a no-op, and must not throw
    }

    [Fact]
    public void Settle_UsageBelowTheReservation_GivesTheDifferenceBack()
    {
        var tenant = Tenant(tpm: 1000);
        var limits = Limits(tenant);

        var result = limits.TryAcquire(tenant, 600);
        Assert.True(result.IsAllowed);
        Assert.Equal(400, limits.Of("acme")!.Tokens!.Remaining);
        result.Lease.Settle(admitted: true, new Usage(100, 50));

        Assert.Equal(850, limits.Of("acme")!.Tokens!.Remaining);
    }

    [Fact]
    public void Settle_UsageAboveTheReservation_ChargesTheDifference()
    {
        var tenant = Tenant(tpm: 1000);
        var limits = Limits(tenant);

        var result = limits.TryAcquire(tenant, 300);
        result.Lease.Settle(admitted: true, new Usage(200, 300));

        Assert.Equal(500, limits.Of("acme")!.Tokens!.Remaining);
    }

    [Fact]
    public void Settle_UnknownUsage_KeepsTheWholeReservation()
    {
        var tenant = Tenant(tpm: 1000);
        var limits = Limits(tenant);

        limits.TryAcquire(tenant, 300).Lease.Settle(admitted: true, usage: null);

        Assert.Equal(700, limits.Of("acme")!.Tokens!.Remaining);
    }

    [Fact]
    public void Settle_NotAdmitted_GivesTheRequestAndTheReservationBack()
    {
        var tenant = Tenant(rpm: 2, tpm: 1000, maxInFlight: 1);
        var limits = Limits(tenant);

        limits.TryAcquire(tenant, 300).Lease.Settle(admitted: false, usage: null);

        var state = limits.Of("acme")!;
        Assert.Equal((2, 1000, 0), (state.Requests!.Remaining, state.Tokens!.Remaining, state.InFlight));
    }

    [Fact]
    public void TryAcquire_ReservationAboveTheTokensLeft_IsRefusedAndTakesNothing()
    {
        var tenant = Tenant(rpm: 10, tpm: 1000);
        var limits = Limits(tenant);
        Assert.True(limits.TryAcquire(tenant, 700).IsAllowed);

        var refused = limits.TryAcquire(tenant, 301);

        Assert.Equal(LimitRefusal.Tokens, refused.Refusal);
        Assert.Equal(301, refused.Requested);
        var state = limits.Of("acme")!;
        Assert.Equal((9, 300, 1), (state.Requests!.Remaining, state.Tokens!.Remaining, state.InFlight));
        Assert.True(limits.TryAcquire(tenant, 300).IsAllowed);
    }

    [Fact]
    public void TryAcquire_RpmSpent_IsRefusedForRequests()
    {
        var tenant = Tenant(rpm: 2);
        var limits = Limits(tenant);

        Assert.True(limits.TryAcquire(tenant, 1).IsAllowed);
        Assert.True(limits.TryAcquire(tenant, 1).IsAllowed);
        var refused = limits.TryAcquire(tenant, 1);

        Assert.Equal(LimitRefusal.Requests, refused.Refusal);
        Assert.Equal(2, limits.Of("acme")!.InFlight); // the refused one left no count behind

        // The bucket has refilled one request after 30 s, but the sliding minute still holds
        // two: a third within the same 60 s would exceed rpm. The window frees them at 61 s.
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(LimitRefusal.Requests, limits.TryAcquire(tenant, 1).Refusal);
        _clock.Advance(TimeSpan.FromSeconds(31));
        Assert.True(limits.TryAcquire(tenant, 1).IsAllowed);
    }

    [Fact]
    public void TryAcquire_MaxInFlightReached_IsRefusedUntilOneSettles()
    {
        var tenant = Tenant(maxInFlight: 2);
        var limits = Limits(tenant);
        var first = limits.TryAcquire(tenant, 1);
        var second = limits.TryAcquire(tenant, 1);

        var third = limits.TryAcquire(tenant, 1);
        Assert.Equal(LimitRefusal.InFlight, third.Refusal);

        first.Lease.Settle(admitted: true, usage: null);
        Assert.Equal(1, limits.Of("acme")!.InFlight);
        Assert.True(limits.TryAcquire(tenant, 1).IsAllowed);
        Assert.Equal(LimitRefusal.InFlight, limits.TryAcquire(tenant, 1).Refusal);
        second.Lease.Settle(admitted: false, usage: null);
        Assert.Equal(1, limits.Of("acme")!.InFlight);
    }

    [Fact]
    public void Apply_SameLimits_KeepsTheStateAndItsBuckets()
    {
        var tenant = Tenant(rpm: 5, tpm: 100, maxInFlight: 3);
        var limits = Limits(tenant);
        var lease = limits.TryAcquire(tenant, 40).Lease;
        var state = limits.Of("acme")!;
        var buckets = (state.Requests, state.Tokens);

        limits.Apply(Snapshots.Create(tenants: [Tenant(rpm: 5, tpm: 100, maxInFlight: 3)], revision: 2));

        Assert.Same(state, limits.Of("acme"));
        Assert.Equal(buckets, (state.Requests, state.Tokens));
        Assert.Equal((4, 60, 1), (state.Requests!.Remaining, state.Tokens!.Remaining, state.InFlight));
        lease.Settle(admitted: true, new Usage(10, 10));
        Assert.Equal(80, state.Tokens.Remaining);
    }

    [Fact]
    public void Apply_ChangedLimit_ResizesTheBucketAndCarriesTheUseOver()
    {
        var tenant = Tenant(rpm: 10, tpm: 1000);
        var limits = Limits(tenant);
        limits.TryAcquire(tenant, 400);
        var state = limits.Of("acme")!;
        var requests = state.Requests;

        limits.Apply(Snapshots.Create(tenants: [Tenant(rpm: 10, tpm: 500, maxInFlight: 1)], revision: 2));

        Assert.Same(state, limits.Of("acme"));
        Assert.Same(requests, state.Requests);
        Assert.Equal((500, 100), (state.Tokens!.Capacity, state.Tokens.Remaining));
        Assert.Equal(1, state.MaxInFlight);
        Assert.Equal(LimitRefusal.InFlight, limits.TryAcquire(tenant, 1).Refusal); // the one in flight counts against the new max
    }

    [Fact]
    public void Apply_TenantGoneOrUnlimited_DropsItsState()
    {
        var limits = Limits(Tenant(rpm: 10), Tenant("other", tpm: 10));

        limits.Apply(Snapshots.Create(tenants: [Tenant()], revision: 2));

        Assert.Null(limits.Of("acme"));
        Assert.Null(limits.Of("other"));
    }

    private TenantLimits Limits(params TenantModel[] tenants)
    {
        var limits = new TenantLimits(_clock);
        limits.Apply(Snapshots.Create(tenants: tenants));
        return limits;
    }

    private static TenantModel Tenant(long rpm = 0, long tpm = 0, int maxInFlight = 0) => Tenant("acme", rpm, tpm, maxInFlight);

    private static TenantModel Tenant(string name, long rpm = 0, long tpm = 0, int maxInFlight = 0) =>
        new(name, "default", 1, [], ["*"], rpm, tpm, maxInFlight);
}
