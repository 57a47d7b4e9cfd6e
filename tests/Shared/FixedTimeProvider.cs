namespace AotProxy.Testing;

// Pins the wall clock (`created` fields, config load times) and leaves timers and timestamps
// real: two identical requests then produce identical bytes.
internal sealed class FixedTimeProvider(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}
