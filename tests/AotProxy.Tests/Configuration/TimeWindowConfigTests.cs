namespace AotProxy.Tests.Configuration;

public sealed class TimeWindowConfigTests
{
    // Lines 1-2: the class; 3: [[time_windows]]; 4 name; 5 schedule; 6 duration; 7 class; 8 the extra line.
    private const string Spot = "[[classes]]\nname = \"spot\"\n";

    [Theory]
    [InlineData("61 * * * *", "1h", "spot", "priority = 0", 5, "time_windows[0].schedule")]
    [InlineData("0 22 * *", "1h", "spot", "priority = 0", 5, "time_windows[0].schedule")]
    [InlineData("0 22 * * *", "soon", "spot", "priority = 0", 6, "time_windows[0].duration")]
    [InlineData("0 22 * * *", "0s", "spot", "priority = 0", 6, "time_windows[0].duration")]
    [InlineData("0 22 * * *", "169h", "spot", "priority = 0", 6, "time_windows[0].duration")]
    [InlineData("0 22 * * *", "1h", "gold", "priority = 0", 7, "time_windows[0].class")]
    [InlineData("0 22 * * *", "1h", "spot", "priority = 10", 8, "time_windows[0].priority")]
    [InlineData("0 22 * * *", "1h", "spot", "priority = -2", 8, "time_windows[0].priority")]
    [InlineData("0 22 * * *", "1h", "spot", "weight = -1", 8, "time_windows[0].weight")]
    [InlineData("0 22 * * *", "1h", "spot", "bucket_shift = 10", 8, "time_windows[0].bucket_shift")]
    [InlineData("0 22 * * *", "1h", "spot", "bucket_shift = -10", 8, "time_windows[0].bucket_shift")]
    [InlineData("0 22 * * *", "1h", "spot", "priority = -1", 3, "time_windows[0]")] // changes nothing
    [InlineData("0 22 * * *", "1h", "spot", "weight = 2\nprio = 1", 9, "time_windows[0].prio")]
    public void Parse_InvalidWindow_ReportsKeyAndLine(string schedule, string duration, string cls, string extra, int line, string key)
    {
        var error = TestConfig.SingleError(Spot + Window("w", schedule, duration, cls, extra));

        Assert.Equal((key, line), (error.Key, error.Line));
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Theory]
    [InlineData("Mars/Olympus_Mons")]
    [InlineData("+25:00")]
    [InlineData("+2")]
    public void Parse_UnknownTimezone_ReportsKeyAndLine(string zone)
    {
        var error = TestConfig.SingleError(Spot + Window("w", "0 22 * * *", "1h", "spot", $"priority = 0\ntimezone = \"{zone}\""));

        Assert.Equal(("time_windows[0].timezone", 9), (error.Key, error.Line));
    }

    [Fact]
    public void Parse_CronError_NamesTheFieldAndValue()
    {
        var error = TestConfig.SingleError(Spot + Window("w", "0 22 * * FUNDAY", "1h", "spot", "priority = 0"));

        Assert.Contains("day-of-week field \"FUNDAY\"", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_DuplicateName_ReportsTheSecond()
    {
        var error = TestConfig.SingleError(Spot + Window("w", "0 22 * * *", "1h", "spot", "priority = 0") + Window("w", "0 8 * * *", "1h", "spot", "weight = 2"));

        Assert.Equal(("time_windows[1].name", 10), (error.Key, error.Line));
    }

    [Fact]
    public void Parse_ValidWindow_BuildsTheModel()
    {
        var snapshot = TestConfig.Valid(Spot + Window("night", "0  22 * * mon-fri", "8h", "spot", "weight = 5\nbucket_shift = -2\ntimezone = \"+02:00\""));

        var window = Assert.Single(snapshot.TimeWindows);
        Assert.Equal(("night", "spot", TimeSpan.FromHours(8)), (window.Name, window.Class, window.Duration));
        Assert.Equal((null, 5, -2), (window.Priority, window.Weight, window.BucketShift));
        Assert.Equal("0 22 * * mon-fri", window.Schedule.Text);
        Assert.Equal(TimeSpan.FromHours(2), window.Schedule.Zone.BaseUtcOffset);
    }

    [Fact]
    public void Parse_NoWindows_LeavesTheSetEmpty()
    {
        var snapshot = TestConfig.Valid(Spot);

        Assert.Empty(snapshot.TimeWindows);
        var spot = snapshot.ClassesByName["spot"];
        Assert.Same(spot, snapshot.ClassOverrides.Apply(spot, DateTimeOffset.UtcNow));
    }

    private static string Window(string name, string schedule, string duration, string cls, string extra) =>
        $"[[time_windows]]\nname = \"{name}\"\nschedule = \"{schedule}\"\nduration = \"{duration}\"\nclass = \"{cls}\"\n{extra}\n";
}
