using AotProxy.Load.Profiles;

namespace AotProxy.Load.Scheduling;

// The profile's steps, scaled and laid end to end: step n starts when step n-1's duration is over
// (closed-loop requests still running then finish in the background, as in NBomber).
internal sealed class LoadPlan
{
    private LoadPlan(IReadOnlyList<PlannedStep> steps, double totalSeconds)
    {
        Steps = steps;
        TotalSeconds = totalSeconds;
    }

    public IReadOnlyList<PlannedStep> Steps { get; }

    public double TotalSeconds { get; }

    // durationScale shortens (or stretches) every duration and burst window; rateScale multiplies
    // inject and ramp rates and burst sizes. keep_constant concurrency stays: it is a shape, not a rate.
    public static LoadPlan Create(IReadOnlyList<LoadStep> steps, double durationScale, double rateScale)
    {
        ArgumentNullException.ThrowIfNull(steps);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(durationScale);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rateScale);
        var planned = new List<PlannedStep>(steps.Count);
        var at = 0.0;
        foreach (var step in steps)
        {
            var scaled = step with
            {
                Duration = step.Duration * durationScale,
                Window = step.Window * durationScale,
                RateFrom = step.RateFrom * rateScale,
                RateTo = step.RateTo * rateScale,
                Count = step.Kind == LoadKind.Burst ? Math.Max(1, (int)Math.Round(step.Count * rateScale)) : step.Count,
            };
            planned.Add(new PlannedStep(scaled, at));
            at += scaled.Duration.TotalSeconds;
        }

        return new LoadPlan(planned, at);
    }
}
