namespace AotProxy.Load.Profiles;

// A validated [[load]] step. Inject has RateFrom == RateTo. Duration is how long the step lasts
// before the next begins (for a burst: at least its window).
internal sealed record LoadStep(
    LoadKind Kind,
    TimeSpan Duration,
    double RateFrom,
    double RateTo,
    int Concurrency,
    int Count,
    TimeSpan Window)
{
    public static LoadStep Inject(double rate, TimeSpan duration) => new(LoadKind.Inject, duration, rate, rate, 0, 0, TimeSpan.Zero);

    public static LoadStep Ramp(double from, double to, TimeSpan duration) => new(LoadKind.Ramp, duration, from, to, 0, 0, TimeSpan.Zero);

    public static LoadStep KeepConstant(int concurrency, TimeSpan duration) => new(LoadKind.KeepConstant, duration, 0, 0, concurrency, 0, TimeSpan.Zero);

    public static LoadStep Burst(int count, TimeSpan window, TimeSpan duration) => new(LoadKind.Burst, duration < window ? window : duration, 0, 0, 0, count, window);
}
