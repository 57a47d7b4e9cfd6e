using System.Net;

namespace AotProxy.Simulator.Tests;

// --scheduling-policy priority over HTTP: with every sequence slot taken, a request that arrives
// later with priority 0 is served before the priority-4 requests already waiting.
public sealed class SchedulingPolicyTests
{
    [Fact]
    public async Task Priority_SlotsFull_LaterP0IsServedBeforeEarlierP4s()
    {
        // Real speed: the holder's 100 tokens take about a second, time enough to queue the rest.
        await using var worker = await TestWorker.StartAsync(o => { o.MaxNumSeqs = 1; o.SpeedFactor = 1; o.SchedulingPolicy = SchedulingPolicy.Priority; });
        var finished = new List<string>();
        async Task Send(string name, int priority, int maxTokens)
        {
            var body = TestWorker.Chat(name, maxTokens: maxTokens, ignoreEos: true).TrimEnd('}') + $",\"priority\":{priority}}}";
            var (response, text) = await worker.SendAsync(TestWorker.ChatPath, body);
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            lock (finished)
            {
                finished.Add(name);
            }
        }

        var holder = Send("holder", 9, 100);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Running == 1));
        // One at a time, so their arrival order is known; 20 tokens (200 ms) apart in service, so
        // the order the answers come back in is the order they were served.
        var p4First = Send("p4-first", 4, 20);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Waiting == 1));
        var p4Second = Send("p4-second", 4, 20);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Waiting == 2));
        var p0 = Send("p0-last", 0, 20);
        Assert.True(await Eventually.TrueAsync(() => worker.Stats.Waiting == 3), $"waiting={worker.Stats.Waiting}: the holder finished too soon");

        await Task.WhenAll(holder, p4First, p4Second, p0).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["holder", "p0-last", "p4-first", "p4-second"], finished);
    }
}
