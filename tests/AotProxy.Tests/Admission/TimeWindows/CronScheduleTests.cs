using System.Globalization;
using AotProxy.Admission.TimeWindows;

namespace AotProxy.Tests.Admission.TimeWindows;

public sealed class CronScheduleTests
{
    [Theory]
    [InlineData("* * * * *", "2025-01-08 13:37", true)]
    [InlineData("30 * * * *", "2025-01-08 13:30", true)]
    [InlineData("30 * * * *", "2025-01-08 13:31", false)]
    [InlineData("*/15 * * * *", "2025-01-08 10:45", true)]
    [InlineData("*/15 * * * *", "2025-01-08 10:50", false)]
    [InlineData("10-50/10 * * * *", "2025-01-08 10:30", true)]
    [InlineData("10-50/10 * * * *", "2025-01-08 10:50", true)]
    [InlineData("10-50/10 * * * *", "2025-01-08 10:35", false)]
    [InlineData("10-50/10 * * * *", "2025-01-08 10:00", false)]
    [InlineData("5/20 * * * *", "2025-01-08 10:45", true)] // 5, 25, 45
    [InlineData("5/20 * * * *", "2025-01-08 10:44", false)]
    [InlineData("1,2 * * * *", "2025-01-08 10:02", true)]
    [InlineData("1,2 * * * *", "2025-01-08 10:03", false)]
    [InlineData("0 9-17 * * *", "2025-01-08 17:00", true)]
    [InlineData("0 9-17 * * *", "2025-01-08 18:00", false)]
    [InlineData("0 0 * JAN,mar *", "2025-03-01 00:00", true)]
    [InlineData("0 0 * JAN,mar *", "2025-02-01 00:00", false)]
    [InlineData("0 0 * feb-Apr *", "2025-04-10 00:00", true)]
    [InlineData("0 0 * * sun", "2025-01-05 00:00", true)]
    [InlineData("0 0 * * 0", "2025-01-05 00:00", true)]
    [InlineData("0 0 * * 7", "2025-01-05 00:00", true)]
    [InlineData("0 0 * * 7", "2025-01-06 00:00", false)]
    [InlineData("0 0 * * MON-FRI", "2025-01-08 00:00", true)]
    [InlineData("0 0 * * MON-FRI", "2025-01-04 00:00", false)]
    [InlineData("0 0 * * 5-7", "2025-01-05 00:00", true)] // Sunday as 7 inside a range
    [InlineData("0 0 31 * *", "2025-01-31 00:00", true)]
    [InlineData("0 0 31 * *", "2025-01-30 00:00", false)]
    public void Matches_EachSyntaxFeature(string cron, string time, bool expected)
    {
        Assert.True(CronSchedule.TryParse(cron, out var schedule, out var error), error);

        Assert.Equal(expected, schedule.Matches(At(time).UtcDateTime));
    }

    [Theory]
    [InlineData("0 0 13 * FRI", "2025-06-06", true)]   // a Friday, not the 13th: the weekday matches
    [InlineData("0 0 13 * FRI", "2025-05-13", true)]   // the 13th, a Tuesday: the day of month matches
    [InlineData("0 0 13 * FRI", "2025-06-07", false)]  // neither
    [InlineData("0 0 13 * *", "2025-06-06", false)]    // only day of month restricted: it alone counts
    [InlineData("0 0 * * FRI", "2025-05-13", false)]   // only day of week restricted: it alone counts
    [InlineData("0 0 */2 * FRI", "2025-06-06", false)] // "*/2" starts with '*': both must match (Vixie cron)
    [InlineData("0 0 */2 * FRI", "2025-06-13", true)]
    public void Matches_BothDayFieldsRestricted_EitherOneMatches(string cron, string day, bool expected)
    {
        Assert.True(CronSchedule.TryParse(cron, out var schedule, out var error), error);

        Assert.Equal(expected, schedule.Matches(At(day + " 00:00").UtcDateTime));
    }

    [Theory]
    [InlineData("* * * *", "has 4 fields; a cron schedule has 5")]
    [InlineData("* * * * * *", "has 6 fields; a cron schedule has 5")]
    [InlineData("60 * * * *", "minute field \"60\": 60 is out of range 0-59")]
    [InlineData("* 24 * * *", "hour field \"24\"")]
    [InlineData("* * 0 * *", "day-of-month field \"0\"")]
    [InlineData("* * 32 * *", "day-of-month field \"32\"")]
    [InlineData("* * * 13 *", "month field \"13\"")]
    [InlineData("* * * FOO *", "month field \"FOO\": \"FOO\" is not a number 1-12 or a name JAN-DEC")]
    [InlineData("* * * * 8", "day-of-week field \"8\"")]
    [InlineData("* * * * MONDAY", "day-of-week field \"MONDAY\"")]
    [InlineData("*/0 * * * *", "minute field \"*/0\": step \"0\"")]
    [InlineData("*/x * * * *", "step \"x\"")]
    [InlineData("5-1 * * * *", "minute field \"5-1\": range \"5-1\" runs backwards")]
    [InlineData("1,,2 * * * *", "minute field \"1,,2\"")]
    [InlineData("-1 * * * *", "minute field \"-1\"")]
    [InlineData("* JAN * * *", "hour field \"JAN\"")]
    public void TryParse_Invalid_NamesTheFieldAndValue(string cron, string expected)
    {
        Assert.False(CronSchedule.TryParse(cron, out _, out var error));

        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2025-01-01 21:59", false)]
    [InlineData("2025-01-01 22:00", true)]
    [InlineData("2025-01-01 23:59", true)]
    [InlineData("2025-01-02 00:00", true)]  // across midnight
    [InlineData("2025-01-02 05:59", true)]
    [InlineData("2025-01-02 06:00", false)] // 22:00 + 8h: the end is exclusive
    public void IsActive_NightlyWindow_AcrossMidnight(string now, bool expected)
    {
        Assert.True(CronSchedule.TryParse("0 22 * * *", out var schedule, out _));

        Assert.Equal(expected, schedule.IsActive(At(now), TimeSpan.FromHours(8)));
    }

    [Theory]
    [InlineData("2025-02-01 03:00", true)]  // from Jan 31 22:00 into February
    [InlineData("2025-03-01 03:00", false)] // February has no 31st
    [InlineData("2025-01-01 03:00", true)]  // from Dec 31 into the new year
    [InlineData("2025-05-01 03:00", false)] // nor has April
    [InlineData("2025-01-31 21:59", false)]
    public void IsActive_MonthEnd(string now, bool expected)
    {
        // Only months with a 31st start this window; one that starts runs into the next month.
        Assert.True(CronSchedule.TryParse("0 22 31 * *", out var schedule, out _));

        Assert.Equal(expected, schedule.IsActive(At(now), TimeSpan.FromHours(8)));
    }

    [Fact]
    public void ActiveStart_ReturnsTheLatestStartThatCoversNow()
    {
        Assert.True(CronSchedule.TryParse("*/10 * * * *", out var schedule, out _));

        Assert.Equal(At("2025-01-08 10:20"), schedule.ActiveStart(At("2025-01-08 10:27:30"), TimeSpan.FromMinutes(30)));
        Assert.Null(schedule.ActiveStart(At("2025-01-08 10:27:30"), TimeSpan.FromMinutes(5)));
    }

    [Theory]
    [InlineData("2025-01-07 23:59", true)]
    [InlineData("2025-01-08 00:00", false)]
    [InlineData("2024-12-31 23:59", false)]
    public void IsActive_WeekLongWindow_LooksBackItsWholeDuration(string now, bool expected)
    {
        Assert.True(CronSchedule.TryParse("0 0 1 1 *", out var schedule, out _));

        Assert.Equal(expected, schedule.IsActive(At(now), TimeSpan.FromDays(7)));
    }

    [Fact]
    public void IsActive_WeeklyScheduleOfAWeek_IsAlwaysActive()
    {
        Assert.True(CronSchedule.TryParse("0 0 * * MON", out var schedule, out _));

        for (var t = At("2025-01-01 00:00"); t < At("2025-01-20 00:00"); t += TimeSpan.FromMinutes(37))
        {
            Assert.True(schedule.IsActive(t, TimeSpan.FromDays(7)), t.ToString("O", CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public void IsActive_FixedOffset_ReadsTheScheduleOnThatClock()
    {
        var plusTwo = TimeZoneInfo.CreateCustomTimeZone("+02:00", TimeSpan.FromHours(2), "+02:00", "+02:00");
        Assert.True(CronSchedule.TryParse("0 22 * * *", plusTwo, out var schedule, out _));

        Assert.True(schedule.IsActive(At("2025-01-08 20:30"), TimeSpan.FromHours(1)));   // 22:30 at +02:00
        Assert.False(schedule.IsActive(At("2025-01-08 22:30"), TimeSpan.FromHours(1)));
        var start = schedule.ActiveStart(At("2025-01-08 20:30"), TimeSpan.FromHours(1));
        Assert.Equal(At("2025-01-08 20:00"), start);
        Assert.Equal(TimeSpan.Zero, start!.Value.Offset); // reported in UTC, whatever the window's clock
    }

    [Fact]
    public void IsActive_IanaZone_FollowsDaylightSavingTime()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        Assert.True(CronSchedule.TryParse("0 22 * * *", berlin, out var schedule, out _));

        Assert.True(schedule.IsActive(At("2025-07-01 20:30"), TimeSpan.FromHours(1)));  // CEST, +02:00
        Assert.False(schedule.IsActive(At("2025-07-01 21:30"), TimeSpan.FromHours(1)));
        Assert.True(schedule.IsActive(At("2025-01-08 21:30"), TimeSpan.FromHours(1)));  // CET, +01:00
        Assert.False(schedule.IsActive(At("2025-01-08 20:30"), TimeSpan.FromHours(1)));
    }

    private static DateTimeOffset At(string text) =>
        DateTimeOffset.ParseExact(text, ["yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
}
