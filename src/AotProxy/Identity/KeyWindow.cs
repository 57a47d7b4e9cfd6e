namespace AotProxy.Identity;

// The time of day (UTC) an issued key may be used in, to the minute: [Start, End). End before
// Start wraps midnight ("22:00-06:00"). Minutes of the day, so the check is two compares and no
// allocation on the hot path.
internal readonly record struct KeyWindow(short StartMinute, short EndMinute)
{
    public const int MinutesPerDay = 24 * 60;

    public static KeyWindow Always => new(0, 0);

    public bool IsAlways => StartMinute == EndMinute;

    public bool Contains(long unixMilliseconds)
    {
        if (IsAlways)
        {
            return true;
        }

        var minute = (int)(unixMilliseconds / 60_000 % MinutesPerDay);
        return StartMinute < EndMinute
            ? minute >= StartMinute && minute < EndMinute
            : minute >= StartMinute || minute < EndMinute;
    }

    // "HH:MM-HH:MM" (UTC); "" is always.
    public static bool TryParse(string? text, out KeyWindow window)
    {
        window = Always;
        if (string.IsNullOrEmpty(text))
        {
            return true;
        }

        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0 || !TryMinute(text.AsSpan(0, dash), out var start) || !TryMinute(text.AsSpan(dash + 1), out var end))
        {
            return false;
        }

        // "09:00-09:00" is no time at all (a typo); "00:00-24:00" is the whole day: always.
        if (start == end && text.AsSpan(0, dash).Trim().SequenceEqual(text.AsSpan(dash + 1).Trim()))
        {
            return false;
        }

        window = new KeyWindow(start, end);
        return true;
    }

    public override string ToString() => IsAlways ? "" : $"{Format(StartMinute)}-{Format(EndMinute)}";

    private static string Format(int minute) => $"{minute / 60:00}:{minute % 60:00}";

    private static bool TryMinute(ReadOnlySpan<char> text, out short minute)
    {
        minute = 0;
        text = text.Trim();
        if (text.Length != 5 || text[2] != ':'
            || !int.TryParse(text[..2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var hours)
            || !int.TryParse(text[3..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var minutes)
            || hours > 24 || minutes > 59 || (hours == 24 && minutes != 0))
        {
            return false;
        }

        minute = (short)((hours * 60 + minutes) % MinutesPerDay); // "24:00" is midnight
        return true;
    }
}
