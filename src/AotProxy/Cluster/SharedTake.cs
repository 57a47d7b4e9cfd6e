namespace AotProxy.Cluster;

// The shared RPM window's answer: taken in Second (Redis's clock, in Unix seconds, what a
// give-back names), or refused with how long until the oldest counted request leaves the window.
internal readonly record struct SharedTake(bool Taken, long Second, TimeSpan RetryAfter);
