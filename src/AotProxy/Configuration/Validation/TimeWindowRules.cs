using System.Collections.Immutable;
using System.Globalization;
using AotProxy.Admission.TimeWindows;

namespace AotProxy.Configuration.Validation;

// [[time_windows]]: when a class's priority, weight or buckets change.
internal static class TimeWindowRules
{
    // A time window's longest occurrence: a weekly schedule can cover its whole week, and the
    // look-back for the running occurrence stays bounded.
    private static readonly TimeSpan MaxWindowDuration = TimeSpan.FromDays(7);

    public static ImmutableArray<TimeWindowModel> Validate(ValidationContext context, IReadOnlyList<TimeWindowConfig> windows, ImmutableArray<ClassModel> classes, int bucketCount)
    {
        var result = ImmutableArray.CreateBuilder<TimeWindowModel>(windows.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < windows.Count; i++)
        {
            var window = windows[i];
            var at = $"time_windows[{i}]";
            context.Unknown(at, window.Unknown);
            var valid = context.Name($"{at}.name", window.Name, "time window", names, i, "time_windows");
            var zone = TimeZone(context, $"{at}.timezone", window.Timezone);
            CronSchedule? schedule = null;
            if (zone is not null && !CronSchedule.TryParse(window.Schedule, zone, out schedule, out var cronError))
            {
                context.Error($"{at}.schedule", cronError);
            }

            var duration = context.Positive($"{at}.duration", window.Duration);
            if (duration > MaxWindowDuration)
            {
                context.Error($"{at}.duration", $"must be at most 168h (7 days, a weekly schedule's whole week), got \"{window.Duration}\"");
            }

            if (!classes.Any(c => string.Equals(c.Name, window.Class, StringComparison.Ordinal)))
            {
                context.Error($"{at}.class", $"class \"{window.Class}\" is not defined; the classes are {string.Join(", ", classes.Select(c => $"\"{c.Name}\""))}");
                valid = false;
            }

            if (window.Priority is < -1 or > ClassModel.MaxPriority)
            {
                context.Error($"{at}.priority", $"must be -1 (unchanged) or 0 (most important) to {ClassModel.MaxPriority} (got {window.Priority})");
            }

            context.AtLeast($"{at}.weight", window.Weight, 0);
            if (Math.Abs(window.BucketShift) >= bucketCount)
            {
                context.Error($"{at}.bucket_shift", $"must be between -{bucketCount - 1} and {bucketCount - 1} (scheduler.bucket_count is {bucketCount}), got {window.BucketShift}");
            }

            if (window.Priority == -1 && window.Weight == 0 && window.BucketShift == 0)
            {
                context.Error(at, "changes nothing; set priority (0..9), weight (>= 1) or bucket_shift (not 0)");
            }

            if (valid && schedule is not null)
            {
                result.Add(new TimeWindowModel(
                    window.Name,
                    schedule,
                    duration,
                    window.Class,
                    window.Priority >= 0 ? window.Priority : null,
                    window.Weight > 0 ? window.Weight : null,
                    window.BucketShift));
            }
        }

        return result.ToImmutable();
    }

    // "UTC" (or ""), a fixed offset "+02:00" / "-05:30", or an IANA id from the host's tz database
    // (/usr/share/zoneinfo on Linux: InvariantGlobalization does not affect it, but a minimal
    // container image may not ship it, hence the hint in the error).
    private static TimeZoneInfo? TimeZone(ValidationContext context, string path, string text)
    {
        if (text.Length == 0 || string.Equals(text, "UTC", StringComparison.OrdinalIgnoreCase))
        {
            return TimeZoneInfo.Utc;
        }

        if (text[0] is '+' or '-')
        {
            if (text.Length == 6 && text[3] == ':'
                && int.TryParse(text.AsSpan(1, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var hours)
                && int.TryParse(text.AsSpan(4, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var minutes)
                && hours <= 14 && minutes < 60)
            {
                var offset = new TimeSpan(hours, minutes, 0) * (text[0] == '-' ? -1 : 1);
                return TimeZoneInfo.CreateCustomTimeZone(text, offset, text, text);
            }

            context.Error(path, $"\"{text}\" is not an offset; write \"+HH:MM\" or \"-HH:MM\" (at most 14:00)");
            return null;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(text);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            context.Error(path, $"time zone \"{text}\" is not in this host's tz database; use an IANA id (\"Europe/Berlin\") with tzdata installed, \"UTC\" or a fixed offset (\"+02:00\")");
            return null;
        }
    }
}
