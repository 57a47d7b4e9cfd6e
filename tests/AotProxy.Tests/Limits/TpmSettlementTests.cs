using AotProxy.Accounting;
using AotProxy.Configuration;
using AotProxy.Limits;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Limits;

// A TPM reservation (prompt estimate + max_tokens) settles to exactly the usage's total tokens,
// whichever way the estimate was off: what the minute holds afterwards is the usage, to the token,
// in the token bucket and in the sliding window alike.
public class TpmSettlementTests
{
    private readonly FakeTimeProvider _clock = new();

    [Theory]
    [InlineData(1_000)]
    [InlineData(7_000)]        // 60 s does not divide into whole ticks per token
    [InlineData(99_991)]
    [InlineData(150_000)]
    [InlineData(1_000_003)]
    public void Settle_ManyReservations_TheMinuteHoldsExactlyTheUsage(long tpm)
    {
        var tenant = new TenantModel("acme", "default", 1, [], ["*"], 0, tpm, 0);
        var limits = new TenantLimits(_clock);
        limits.Apply(Snapshots.Create(tenants: [tenant]));
        var random = new Random((int)tpm);
        long used = 0;

        // Reservations well above and well below the usage, settled in another order than taken.
        var leases = new List<(LimitLease Lease, Usage Usage)>();
        for (var i = 0; i < 40; i++)
        {
            var prompt = random.Next(0, (int)Math.Min(tpm / 200, 5_000));
            var completion = random.Next(0, (int)Math.Min(tpm / 200, 2_000));
            var result = limits.TryAcquire(tenant, prompt, completion, default, rejectOverrun: false);
            Assert.True(result.IsAllowed, $"request {i} of {prompt} + {completion} fits in {tpm}");
            var usage = new Usage(prompt * random.Next(20, 200) / 100, completion * random.Next(0, 150) / 100);
            leases.Add((result.Lease, usage));
            used += usage.TotalTokens;
        }

        foreach (var (lease, usage) in leases.OrderBy(_ => random.Next()))
        {
            lease.Settle(admitted: true, usage);
        }

        var minute = limits.Of("acme")!.Tokens!;
        Assert.Equal(tpm - used, minute.Remaining);
        Assert.Equal(used, minute.Used);
    }

    [Theory]
    [InlineData(7_000, 3_000, 1_234)]
    [InlineData(7_000, 1_234, 3_000)]
    [InlineData(1_000_003, 900_001, 1)]
    public void Settle_OneReservation_LeavesTheLimitMinusTheUsage(long tpm, long reserved, long actual)
    {
        var tenant = new TenantModel("acme", "default", 1, [], ["*"], 0, tpm, 0);
        var limits = new TenantLimits(_clock);
        limits.Apply(Snapshots.Create(tenants: [tenant]));

        var result = limits.TryAcquire(tenant, reserved, 0, default, rejectOverrun: false);
        Assert.True(result.IsAllowed);
        result.Lease.Settle(admitted: true, new Usage(actual, 0));

        Assert.Equal(tpm - actual, limits.Of("acme")!.Tokens!.Remaining);
    }
}
