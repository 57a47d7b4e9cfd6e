using AotProxy.Load.Profiles;

namespace AotProxy.Load.Scheduling;

// A step after --duration-scale and --rate-scale, placed on the run's timeline.
internal sealed record PlannedStep(LoadStep Step, double StartSeconds)
{
    public double DurationSeconds => Step.Duration.TotalSeconds;

    public double EndSeconds => StartSeconds + DurationSeconds;
}
