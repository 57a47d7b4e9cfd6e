using AotProxy.Load.Profiles;
using AotProxy.Load.Scheduling;

namespace AotProxy.Load.Tests.Scheduling;

public sealed class OpenLoopScheduleTests
{
    [Fact]
    public void Inject_1000_per_second_for_1_second_is_1000_evenly_spaced_sends()
    {
        var step = LoadStep.Inject(1000, TimeSpan.FromSeconds(1));
        var times = Offsets(step);
        Assert.Equal(1000, times.Length);
        for (var i = 0; i < times.Length; i++)
        {
            Assert.Equal(i * 0.001, times[i], 9);
        }
    }

    [Theory]
    [InlineData(0, 100, 10)]
    [InlineData(100, 0, 10)]
    [InlineData(10, 200, 30)]
    [InlineData(50, 50.0001, 2)]
    public void A_ramp_sends_the_integral_of_its_rate(double from, double to, double seconds)
    {
        var step = LoadStep.Ramp(from, to, TimeSpan.FromSeconds(seconds));
        var times = Offsets(step);

        // N(d) = (from + to) / 2 * d
        Assert.Equal((long)Math.Floor(((from + to) / 2 * seconds) + 1e-9), times.Length);

        // At every whole second the sends so far match N(t) = from*t + (to-from)*t^2/(2d).
        for (var t = 1; t <= seconds; t++)
        {
            var expected = (from * t) + ((to - from) * t * t / (2 * seconds));
            var sent = times.Count(x => x < t);
            Assert.InRange(sent, expected - 1, expected + 1);
        }

        Assert.All(times.Zip(times.Skip(1)), pair => Assert.True(pair.First <= pair.Second));
        Assert.All(times, x => Assert.InRange(x, 0, seconds));
    }

    [Fact]
    public void A_ramp_up_sends_faster_at_its_end()
    {
        var times = Offsets(LoadStep.Ramp(0, 100, TimeSpan.FromSeconds(10)));
        var firstGap = times[2] - times[1];
        var lastGap = times[^1] - times[^2];
        Assert.True(lastGap < firstGap / 5, $"first gap {firstGap}, last gap {lastGap}");
    }

    [Fact]
    public void A_burst_spreads_its_count_evenly_over_its_window()
    {
        var times = Offsets(LoadStep.Burst(1000, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)));
        Assert.Equal(1000, times.Length);
        Assert.Equal(0, times[0]);
        Assert.Equal(0.999, times[^1], 9);
        Assert.Equal(0.5, times[500], 9);
    }

    [Fact]
    public void A_burst_without_a_window_is_released_at_once()
    {
        var times = Offsets(LoadStep.Burst(50, TimeSpan.Zero, TimeSpan.Zero));
        Assert.Equal(50, times.Length);
        Assert.All(times, t => Assert.Equal(0, t));
    }

    [Fact]
    public void A_closed_loop_step_has_no_schedule()
    {
        Assert.Equal(0, OpenLoopSchedule.Count(LoadStep.KeepConstant(8, TimeSpan.FromSeconds(3))));
    }

    [Fact]
    public void Steps_follow_each_other_and_scale()
    {
        LoadStep[] steps =
        [
            LoadStep.Inject(100, TimeSpan.FromSeconds(10)),
            LoadStep.Burst(1000, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)),
            LoadStep.KeepConstant(8, TimeSpan.FromSeconds(6)),
        ];
        var plan = LoadPlan.Create(steps, durationScale: 0.5, rateScale: 2);
        Assert.Equal([0, 5, 7], plan.Steps.Select(s => s.StartSeconds));
        Assert.Equal(10, plan.TotalSeconds);
        Assert.Equal(200, plan.Steps[0].Step.RateFrom);
        Assert.Equal(1000, OpenLoopSchedule.Count(plan.Steps[0].Step)); // 200/s for 5 s
        Assert.Equal(2000, plan.Steps[1].Step.Count);
        Assert.Equal(TimeSpan.FromMilliseconds(500), plan.Steps[1].Step.Window);
        Assert.Equal(8, plan.Steps[2].Step.Concurrency);
    }

    [Fact]
    public void The_mix_is_exact_and_interleaved()
    {
        var picker = new MixPicker(
        [
            new MixEntry("e", 70, true, 1, 1, "", ""),
            new MixEntry("p", 20, true, 1, 1, "", ""),
            new MixEntry("f", 10, true, 1, 1, "", ""),
        ]);
        var picks = Enumerable.Range(0, 1000).Select(_ => picker.Next()).ToArray();
        Assert.Equal([700, 200, 100], Enumerable.Range(0, 3).Select(i => picks.Count(p => p == i)));

        // Interleaved: every 10 consecutive requests include the 10% entry at most twice and
        // the 70% one at least five times (not 70 in a row, then 20, then 10).
        for (var start = 0; start + 10 <= picks.Length; start += 10)
        {
            var window = picks.AsSpan(start, 10);
            Assert.InRange(window.Count(2), 0, 2);
            Assert.InRange(window.Count(0), 5, 9);
        }
    }

    private static double[] Offsets(LoadStep step) =>
        [.. Enumerable.Range(0, (int)OpenLoopSchedule.Count(step)).Select(i => OpenLoopSchedule.OffsetSeconds(step, i))];
}
