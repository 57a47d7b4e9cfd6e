using System.Globalization;
using System.Numerics;

namespace AotProxy.Admission.TimeWindows;

// A standard five-field cron expression (minute hour day-of-month month day-of-week) with "*",
// lists, ranges, steps and JAN-DEC / SUN-SAT names. Each field is a bit set, so matching a time
// is a few mask tests and finding the latest start at or before a time steps back a whole hour or
// day when a field rules it out, instead of testing every minute of a week-long window.
internal sealed class CronSchedule
{
    private readonly ulong _minutes;   // bit m: minute m
    private readonly uint _hours;      // bit h: hour h
    private readonly uint _days;       // bit d: day-of-month d (1..31)
    private readonly uint _months;     // bit m: month m (1..12)
    private readonly uint _weekdays;   // bit d: day-of-week d (0 = Sunday .. 6)

    // Vixie cron: when both day fields are restricted, a day matches if EITHER does; when one is
    // "*", only the other one counts.
    private readonly bool _dayOfMonthRestricted;
    private readonly bool _dayOfWeekRestricted;

    private CronSchedule(string text, TimeZoneInfo zone, ulong minutes, uint hours, uint days, uint months, uint weekdays, bool domRestricted, bool dowRestricted)
    {
        Text = text;
        Zone = zone;
        _minutes = minutes;
        _hours = hours;
        _days = days;
        _months = months;
        _weekdays = weekdays;
        _dayOfMonthRestricted = domRestricted;
        _dayOfWeekRestricted = dowRestricted;
    }

    public string Text { get; }

    // The wall clock the fields are read in: UTC unless the window names a zone.
    public TimeZoneInfo Zone { get; }

    public static bool TryParse(string text, out CronSchedule schedule, out string error) =>
        TryParse(text, TimeZoneInfo.Utc, out schedule, out error);

    public static bool TryParse(string text, TimeZoneInfo zone, out CronSchedule schedule, out string error)
    {
        schedule = null!;
        var fields = text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 5)
        {
            error = $"\"{text}\" has {fields.Length} fields; a cron schedule has 5: minute hour day-of-month month day-of-week";
            return false;
        }

        if (!TryParseField(fields[0], CronField.Minute, out var minutes, out error)
            || !TryParseField(fields[1], CronField.Hour, out var hours, out error)
            || !TryParseField(fields[2], CronField.DayOfMonth, out var days, out error)
            || !TryParseField(fields[3], CronField.Month, out var months, out error)
            || !TryParseField(fields[4], CronField.DayOfWeek, out var weekdays, out error))
        {
            return false;
        }

        if ((weekdays & (1UL << 7)) != 0)
        {
            weekdays = (weekdays & ~(1UL << 7)) | 1; // 7 is Sunday too
        }

        schedule = new CronSchedule(
            string.Join(' ', fields), zone, minutes, (uint)hours, (uint)days, (uint)months, (uint)weekdays,
            domRestricted: !fields[2].StartsWith('*'), dowRestricted: !fields[4].StartsWith('*'));
        return true;
    }

    // True when an occurrence started at s <= now < s + duration.
    public bool IsActive(DateTimeOffset now, TimeSpan duration) => ActiveStart(now, duration) is not null;

    // The start of the occurrence that is running at `now`, if one is. The latest start at or
    // before `now` is the one to check: if any earlier start still covers `now`, so does it.
    public DateTimeOffset? ActiveStart(DateTimeOffset now, TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero)
        {
            return null;
        }

        if (Zone == TimeZoneInfo.Utc)
        {
            var start = Previous(now.UtcDateTime, duration);
            return start is { } s && now.UtcDateTime < s + duration ? new DateTimeOffset(s, TimeSpan.Zero) : null;
        }

        // In a zone, wall-clock minutes repeat or vanish around DST changes; 2 h of slack covers
        // every shift in the tz database, and the comparison below is in absolute time.
        var local = TimeZoneInfo.ConvertTime(now, Zone).DateTime;
        var limit = duration + TimeSpan.FromHours(2);
        for (var candidate = Previous(local, limit); candidate is { } wall; candidate = Previous(wall.AddMinutes(-1), limit - (local - wall) - TimeSpan.FromMinutes(1)))
        {
            var start = new DateTimeOffset(wall, Zone.GetUtcOffset(wall));
            if (start <= now)
            {
                return now < start + duration ? start.ToUniversalTime() : null; // /api/queues reports UTC
            }
        }

        return null;
    }

    public bool Matches(DateTime time) =>
        (_minutes & (1UL << time.Minute)) != 0
        && (_hours & (1U << time.Hour)) != 0
        && DayMatches(time);

    // The latest scheduled minute at or before `time` (in the schedule's wall-clock time), looking
    // back no further than `limit`; null when there is none in that span.
    public DateTime? Previous(DateTime time, TimeSpan limit)
    {
        var floor = time - limit;
        var t = new DateTime(time.Year, time.Month, time.Day, time.Hour, time.Minute, 0, DateTimeKind.Unspecified);
        while (t >= floor)
        {
            if (!DayMatches(t))
            {
                t = t.Date.AddMinutes(-1); // 23:59 of the day before
                continue;
            }

            var hour = Highest(_hours, t.Hour);
            if (hour < 0)
            {
                t = t.Date.AddMinutes(-1);
                continue;
            }

            if (hour < t.Hour)
            {
                t = t.Date.AddHours(hour).AddMinutes(59);
            }

            var minute = Highest(_minutes, t.Minute);
            if (minute < 0)
            {
                t = t.Date.AddHours(t.Hour).AddMinutes(-1); // the last minute of the hour before
                continue;
            }

            var start = t.Date.AddHours(t.Hour).AddMinutes(minute);
            return start >= floor ? start : null;
        }

        return null;
    }

    private bool DayMatches(DateTime time)
    {
        if ((_months & (1U << time.Month)) == 0)
        {
            return false;
        }

        var dom = (_days & (1U << time.Day)) != 0;
        var dow = (_weekdays & (1U << (int)time.DayOfWeek)) != 0;
        return _dayOfMonthRestricted && _dayOfWeekRestricted ? dom || dow : dom && dow;
    }

    // The highest set bit at or below `at`, or -1.
    private static int Highest(ulong bits, int at)
    {
        var masked = bits & (at >= 63 ? ulong.MaxValue : (2UL << at) - 1);
        return masked == 0 ? -1 : BitOperations.Log2(masked);
    }

    private static bool TryParseField(string text, CronField field, out ulong bits, out string error)
    {
        bits = 0;
        foreach (var part in text.Split(','))
        {
            if (!TryParsePart(part, field, ref bits, out error))
            {
                error = $"{field.Name} field \"{text}\": {error}";
                return false;
            }
        }

        error = "";
        return true;
    }

    // One list item: "*", "N", "A-B", each optionally followed by "/step".
    private static bool TryParsePart(string part, CronField field, ref ulong bits, out string error)
    {
        var range = part;
        var step = 1;
        var slash = part.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            range = part[..slash];
            var stepText = part[(slash + 1)..];
            if (!int.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1)
            {
                error = $"step \"{stepText}\" must be a whole number of at least 1";
                return false;
            }
        }

        int first, last;
        if (range == "*")
        {
            (first, last) = (field.Min, field.Max);
        }
        else
        {
            var dash = range.IndexOf('-', StringComparison.Ordinal);
            if (!TryValue(dash < 0 ? range : range[..dash], field, out first, out error))
            {
                return false;
            }

            last = first;
            if (dash >= 0)
            {
                if (!TryValue(range[(dash + 1)..], field, out last, out error))
                {
                    return false;
                }

                if (last < first)
                {
                    error = $"range \"{range}\" runs backwards; write the smaller value first";
                    return false;
                }
            }
            else if (slash >= 0)
            {
                last = field.Max; // "5/15": from 5 to the end, as Vixie cron reads it
            }
        }

        for (var value = first; value <= last; value += step)
        {
            bits |= 1UL << value;
        }

        error = "";
        return true;
    }

    private static bool TryValue(string text, CronField field, out int value, out string error)
    {
        error = "";
        if (text.Length > 0 && text.Length <= 2 && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            if (value >= field.Min && value <= field.Max)
            {
                return true;
            }

            error = $"{value} is out of range {field.Min}-{field.Max}";
            return false;
        }

        if (field.Names is { } names)
        {
            for (var i = 0; i < names.Length; i++)
            {
                if (string.Equals(text, names[i], StringComparison.OrdinalIgnoreCase))
                {
                    value = i + field.NameBase;
                    return true;
                }
            }
        }

        value = 0;
        error = field.Names is null
            ? $"\"{text}\" is not a number {field.Min}-{field.Max}"
            : $"\"{text}\" is not a number {field.Min}-{field.Max} or a name {field.Names[0]}-{field.Names[^1]}";
        return false;
    }
}
