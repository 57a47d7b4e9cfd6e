using AotProxy.Cli;

namespace AotProxy.Tests.Cli;

public sealed class LogGateTests
{
    [Fact]
    public void TryPass_OnePerInterval()
    {
        var time = new ManualTimeProvider();
        var gate = new LogGate(TimeSpan.FromSeconds(10), time);

        Assert.True(gate.TryPass());
        Assert.False(gate.TryPass());
        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.False(gate.TryPass());
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.True(gate.TryPass());
        Assert.False(gate.TryPass());
    }

    [Fact]
    public void TryPass_ManyThreadsAtOnce_OnlyOnePasses()
    {
        var gate = new LogGate(TimeSpan.FromHours(1), new ManualTimeProvider());
        var passed = 0;

        Parallel.For(0, 10_000, _ =>
        {
            if (gate.TryPass())
            {
                Interlocked.Increment(ref passed);
            }
        });

        Assert.Equal(1, passed);
    }
}
