using AotProxy.Load.Profiles;

namespace AotProxy.Load.Scheduling;

// When each request of an open-loop step is meant to be sent, as an offset from the step's start.
// Computed, not stored: a 10-minute step at 5,000/s would otherwise hold 3 million times.
internal static class OpenLoopSchedule
{
    // Rounding slack: 1000/s for 1 s is 1000 requests, although 1000 * 1.0 may come out 999.9999.
    private const double Epsilon = 1e-9;

    public static long Count(LoadStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var seconds = step.Duration.TotalSeconds;
        return step.Kind switch
        {
            LoadKind.Inject => (long)Math.Floor((step.RateFrom * seconds) + Epsilon),

            // The integral of a rate that moves linearly: the mean rate times the duration.
            LoadKind.Ramp => (long)Math.Floor(((step.RateFrom + step.RateTo) / 2 * seconds) + Epsilon),
            LoadKind.Burst => step.Count,
            _ => 0,
        };
    }

    // Request i (0-based) is sent when i requests' worth of rate has passed: for inject at i/rate;
    // for a ramp where N(t) = from*t + (to-from)*t^2/(2d) reaches i; for a burst evenly in its window.
    public static double OffsetSeconds(LoadStep step, long i)
    {
        ArgumentNullException.ThrowIfNull(step);
        switch (step.Kind)
        {
            case LoadKind.Inject:
                return i / step.RateFrom;
            case LoadKind.Ramp:
                var d = step.Duration.TotalSeconds;
                var a = (step.RateTo - step.RateFrom) / (2 * d);
                var b = step.RateFrom;
                if (Math.Abs(a) < 1e-12)
                {
                    return i / b;
                }

                // a t^2 + b t - i = 0; the root on the increasing side of N. The form
                // 2i / (b + sqrt(b^2 + 4ai)) avoids cancellation when a is small.
                if (i == 0)
                {
                    return 0; // also when the ramp starts from 0, where the root below is 0/0
                }

                var discriminant = Math.Max(0, (b * b) + (4 * a * i));
                var root = b + Math.Sqrt(discriminant);
                return root <= 0 ? d : Math.Min(d, 2 * i / root);
            case LoadKind.Burst:
                return step.Count <= 1 ? 0 : step.Window.TotalSeconds * i / step.Count;
            default:
                return 0;
        }
    }
}
