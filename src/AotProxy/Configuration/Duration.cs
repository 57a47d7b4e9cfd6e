using System.Globalization;

namespace AotProxy.Configuration;

// Durations in the config are strings with a unit (SPEC: "250ms", "30s", "5m"). Also accepted:
// "h", fractions ("1.5s") and Go-style sums ("1m30s"), because operators write them.
internal static class Duration
{
    public static bool TryParse(ReadOnlySpan<char> text, out TimeSpan value)
    {
        value = default;
        if (text.IsEmpty)
        {
            return false;
        }

        decimal ticks = 0;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }

            if (i == start)
            {
                return false; // a unit with no number, a sign, or ".5s"
            }

            if (i < text.Length && text[i] == '.')
            {
                var fraction = ++i;
                while (i < text.Length && char.IsAsciiDigit(text[i]))
                {
                    i++;
                }

                if (i == fraction)
                {
                    return false;
                }
            }

            // 20 digits stay far inside decimal's 28, so the parse below cannot overflow.
            if (i - start > 20)
            {
                return false;
            }

            var number = decimal.Parse(text[start..i], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            var unitStart = i;
            while (i < text.Length && char.IsAsciiLetter(text[i]))
            {
                i++;
            }

            var unit = text[unitStart..i] switch
            {
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => 0,
            };
            if (unit == 0)
            {
                return false;
            }

            // Checked before multiplying: "99999999999999999999h" would overflow decimal itself.
            if (number > (decimal)TimeSpan.MaxValue.Ticks / unit)
            {
                return false;
            }

            ticks += number * unit;
            if (ticks > TimeSpan.MaxValue.Ticks)
            {
                return false;
            }
        }

        value = new TimeSpan((long)decimal.Round(ticks, MidpointRounding.AwayFromZero));
        return true;
    }

    // The shortest form TryParse reads back to the same value: "5m", "90s", "250ms", "1.5ms".
    public static string Format(TimeSpan value)
    {
        var ticks = value.Ticks;
        if (ticks == 0)
        {
            return "0s";
        }

        if (ticks % TimeSpan.TicksPerHour == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerHour}h");
        }

        if (ticks % TimeSpan.TicksPerMinute == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerMinute}m");
        }

        if (ticks % TimeSpan.TicksPerSecond == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerSecond}s");
        }

        return string.Create(CultureInfo.InvariantCulture, $"{(decimal)ticks / TimeSpan.TicksPerMillisecond}ms");
    }
}
