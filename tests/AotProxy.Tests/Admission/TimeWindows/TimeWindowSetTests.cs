using AotProxy.Configuration;
using AotProxy.Tests.Configuration;

namespace AotProxy.Tests.Admission.TimeWindows;

public sealed class TimeWindowSetTests
{
    // 2025-01-08 23:00 UTC: inside "0 22 * * *" + 8h, outside "0 9 * * *" + 8h.
    private static readonly DateTimeOffset Night = new(2025, 1, 8, 23, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Noon = new(2025, 1, 8, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Apply_ClassWithoutWindows_ReturnsTheSameInstance()
    {
        var snapshot = Snapshot(Window("night", "0 22 * * *", "priority = 0"));
        var gold = snapshot.ClassesByName["gold"];

        Assert.Same(gold, snapshot.ClassOverrides.Apply(gold, Night));
    }

    [Fact]
    public void Apply_InactiveWindow_ReturnsTheSameInstance()
    {
        var snapshot = Snapshot(Window("night", "0 22 * * *", "priority = 0"));
        var spot = snapshot.ClassesByName["spot"];

        Assert.Same(spot, snapshot.ClassOverrides.Apply(spot, Noon));
    }

    [Fact]
    public void Apply_ActiveWindow_OverridesOnlyTheFieldsItSets()
    {
        var snapshot = Snapshot(Window("night", "0 22 * * *", "priority = 0"));
        var spot = snapshot.ClassesByName["spot"];

        var applied = snapshot.ClassOverrides.Apply(spot, Night);

        Assert.Equal(spot with { Priority = 0 }, applied);
    }

    [Fact]
    public void Apply_SeveralActiveWindows_TheLaterOneWinsPerField()
    {
        var snapshot = Snapshot(
            Window("a", "0 22 * * *", "priority = 1\nweight = 7"),
            Window("b", "0 20 * * *", "priority = 2"),
            Window("c", "0 9 * * *", "weight = 99")); // inactive at night
        var spot = snapshot.ClassesByName["spot"];

        var applied = snapshot.ClassOverrides.Apply(spot, Night);

        Assert.Equal(2, applied.Priority); // b, later than a
        Assert.Equal(7, applied.Weight);   // a: b leaves the weight, c is not active
    }

    [Theory]
    [InlineData(-3, 5, 6)]
    [InlineData(-9, 0, 0)] // clamped at bucket 0
    [InlineData(5, 9, 9)]  // clamped at the last bucket
    public void Apply_BucketShift_MovesTheRangeInsideTheBuckets(int shift, int first, int last)
    {
        var snapshot = Snapshot(Window("night", "0 22 * * *", $"bucket_shift = {shift}"));
        var spot = snapshot.ClassesByName["spot"]; // priority 4: buckets 8-9 of 10

        var applied = snapshot.ClassOverrides.Apply(spot, Night);

        Assert.Equal((8, 9), (spot.FirstBucket, spot.LastBucket));
        Assert.Equal((first, last), (applied.FirstBucket, applied.LastBucket));
        Assert.Equal(spot.Priority, applied.Priority);
    }

    private static GatewaySnapshot Snapshot(params string[] windows) => TestConfig.Valid($"""
        [[classes]]
        name = "gold"
        priority = 0

        [[classes]]
        name = "spot"
        priority = 4
        weight = 3

        {string.Join("\n", windows)}
        """);

    private static string Window(string name, string schedule, string changes) => $"""
        [[time_windows]]
        name = "{name}"
        schedule = "{schedule}"
        duration = "8h"
        class = "spot"
        {changes}

        """;
}
