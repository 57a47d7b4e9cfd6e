using System.Text;
using AotProxy.Accounting;
using AotProxy.Caching;
using AotProxy.Configuration;

namespace AotProxy.Tests.Caching;

public class ResponseCacheTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Find_MakesAnEntryTheNewest_AndTheByteBoundEvictsTheLeastRecentlyUsed()
    {
        var cache = new ResponseCache(_time);
        var one = Entry(1, 1000);
        cache.Apply(Settings(maxBytes: one.Bytes * 8, ttl: TimeSpan.FromMinutes(1))); // 8 entries; one may take an eighth
        for (var key = 1; key <= 8; key++)
        {
            Assert.True(cache.Add(key == 1 ? one : Entry(key, 1000)));
        }

        Assert.Equal(8 * one.Bytes, cache.Bytes);
        Assert.Same(one, cache.Find(1)); // 1 is now the newest: 2 is the oldest
        Assert.True(cache.Add(Entry(9, 1000)));
        Assert.Null(cache.Find(2));
        Assert.NotNull(cache.Find(1));
        Assert.NotNull(cache.Find(3));
        Assert.NotNull(cache.Find(9));
        Assert.Equal((8, 8 * one.Bytes), (cache.Count, cache.Bytes));
    }

    [Fact]
    public void AnEntryOlderThanTheTtl_IsNeverServed_AndLeaves()
    {
        var cache = new ResponseCache(_time);
        cache.Apply(Settings(maxBytes: 1 << 20, ttl: TimeSpan.FromSeconds(10)));
        cache.Add(Entry(1, 100));
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.NotNull(cache.Find(1));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(cache.Find(1));
        Assert.Equal((0, 0L), (cache.Count, cache.Bytes));
    }

    [Fact]
    public void AReloadThatShrinksMaxBytes_Evicts_AndOneThatDisables_Empties()
    {
        var cache = new ResponseCache(_time);
        var entry = Entry(1, 1000);
        cache.Apply(Settings(maxBytes: 1 << 20, ttl: TimeSpan.FromMinutes(1)));
        for (var key = 1; key <= 10; key++)
        {
            cache.Add(Entry(key, 1000));
        }

        cache.Apply(Settings(maxBytes: entry.Bytes * 4, ttl: TimeSpan.FromMinutes(1)));
        Assert.Equal((4, 4 * entry.Bytes), (cache.Count, cache.Bytes));
        Assert.NotNull(cache.Find(10));
        Assert.Null(cache.Find(6));

        cache.Apply(Settings(maxBytes: 1 << 20, ttl: TimeSpan.FromMinutes(1)) with { Enabled = false });
        Assert.Equal((0, 0L), (cache.Count, cache.Bytes));
        Assert.False(cache.Add(Entry(11, 10)));
    }

    [Fact]
    public void AnAnswerLargerThanAnEighthOfMaxBytes_IsNotStored()
    {
        var cache = new ResponseCache(_time);
        cache.Apply(Settings(maxBytes: 8000, ttl: TimeSpan.FromMinutes(1)));
        Assert.False(cache.Add(Entry(1, 1000)));
        Assert.True(cache.Add(Entry(2, 1000 - CachedResponse.Overhead - 64)));
    }

    [Fact]
    public void EventEnds_AreTheRecordedEventsBoundaries()
    {
        var body = Encoding.UTF8.GetBytes("data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\n\n");
        var ends = ResponseCacheStage.EventEnds(body);
        var events = ends.Select((end, i) => Encoding.UTF8.GetString(body, i == 0 ? 0 : ends[i - 1], end - (i == 0 ? 0 : ends[i - 1]))).ToArray();
        Assert.Equal(["data: {\"a\":1}\n\n", "data: {\"b\":2}\r\n\r\n", "data: [DONE]\n\n"], events);

        var unfinished = Encoding.UTF8.GetBytes("data: 1\n\ndata: 2");
        Assert.Equal([9, unfinished.Length], ResponseCacheStage.EventEnds(unfinished));
    }

    private static ResponseCacheModel Settings(long maxBytes, TimeSpan ttl) => new(true, maxBytes, ttl, ChargeHits: false);

    private CachedResponse Entry(int key, int bodyBytes) =>
        new((UInt128)key, 200, "application/json", new byte[bodyBytes], null, new Usage(5, 7), "m", _time.GetTimestamp());
}
