using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// [[time_windows]] end to end: a window active now changes its class's priority for admission,
// and /api/queues says which windows are active.
public class TimeWindowTests
{
    private const string SpotKey = "sk-test-spot";

    [Fact]
    public async Task ActiveWindow_PromotesItsClass_UnderThePriorityPolicy()
    {
        // Both classes are P4; "promote-spot" runs every minute for an hour, so it is always active
        // and makes spot P0. "never" (February 30th) shows as inactive.
        await using var gateway = await TestGateway.StartAsync(workers: 1, configure: o => o.MaxNumSeqs = 1, extraToml: $"""

            [scheduler]
            policy = "priority"

            [[classes]]
            name = "default"
            priority = 4

            [[classes]]
            name = "spot"
            priority = 4

            [[tenants]]
            name = "spot-batch"
            class = "spot"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(SpotKey)}"]

            [[time_windows]]
            name = "promote-spot"
            schedule = "* * * * *"
            duration = "1h"
            class = "spot"
            priority = 0

            [[time_windows]]
            name = "never"
            schedule = "0 0 30 FEB *"
            duration = "1m"
            class = "default"
            weight = 5
            """);

        var queues = await Fleet.GetJsonAsync(gateway, "/api/queues");
        var windows = queues.GetProperty("time_windows");
        Assert.Equal(2, windows.GetArrayLength());
        var promote = windows[0];
        Assert.Equal(("promote-spot", "spot", "* * * * *", true), (promote.GetProperty("name").GetString(), promote.GetProperty("class").GetString(), promote.GetProperty("schedule").GetString(), promote.GetProperty("active").GetBoolean()));
        var until = promote.GetProperty("active_until").GetDateTimeOffset();
        Assert.InRange(until - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(58), TimeSpan.FromMinutes(60)); // the latest start is this minute's
        Assert.False(windows[1].GetProperty("active").GetBoolean());
        Assert.False(windows[1].TryGetProperty("active_until", out _));

        // The spot tenant holds the one slot (so its counters are not the fairer ones), three
        // default P4 requests queue, then one spot request: promoted to P0, it goes first.
        var first = await Queues.FirstServedAsync(gateway, SpotKey, ["default-0", "default-1", "default-2"], TestGateway.Key, "spot", SpotKey);

        Assert.Equal("spot", first);
    }
}
