using AotProxy.Gateway;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Gateway;

// Issue 22: one collection after a batch of parks, only on a quiet data plane. The fake clock
// runs each once-a-second check when the test advances it; the counters are the test's own.
public sealed class ParkedCollectionTests : IAsyncDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly ParkedCollection _collection;
    private long _parks;
    private long _inFlight;
    private long _allocated = 10_000_000;
    private int _collected;

    public ParkedCollectionTests()
    {
        _collection = new ParkedCollection(() => _parks, () => _inFlight, () => _allocated, Collect, _time, NullLogger.Instance);
    }

    public ValueTask DisposeAsync() => _collection.DisposeAsync();

    [Fact]
    public void ABatchOfParks_OnAQuietDataPlane_IsCollectedOnce_AndTheNextBatchAgain()
    {
        _parks = ParkedCollection.Batch + 10;
        Tick();
        Assert.Equal(1, _collected);
        Assert.Equal(1, _collection.Collections);
        Assert.Equal(TimeSpan.FromMilliseconds(7), _collection.Paused);

        Tick(); // nothing parked since
        Assert.Equal(1, _collected);

        _parks += ParkedCollection.Batch - 1;
        Tick();
        Assert.Equal(1, _collected);
        _parks += 1;
        Tick();
        Assert.Equal(2, _collected);
        Assert.Equal(TimeSpan.FromMilliseconds(14), _collection.Paused);
    }

    [Fact]
    public void FewerParksThanABatch_AreNotCollected()
    {
        _parks = ParkedCollection.Batch - 1;
        Tick();
        Tick();
        Assert.Equal(0, _collected);
    }

    [Fact]
    public void ABatchOfParks_WhileARequestIsInFlight_WaitsUntilItEnds()
    {
        _parks = 6000;
        _inFlight = 1;
        Tick();
        Tick();
        Assert.Equal(0, _collected);

        _inFlight = 0;
        Tick();
        Assert.Equal(1, _collected);
    }

    [Fact]
    public void ABatchOfParks_WhileTheDataPlaneAllocates_WaitsForAQuietSecond()
    {
        _parks = 6000;
        _allocated += ParkedCollection.QuietAllocatedBytes; // a busy second
        Tick();
        Assert.Equal(0, _collected);

        _allocated += ParkedCollection.QuietAllocatedBytes - 1; // a quiet one
        Tick();
        Assert.Equal(1, _collected);
    }

    [Fact]
    public void WhatTheCollectionItselfAllocates_DoesNotMakeTheNextSecondBusy()
    {
        _parks = ParkedCollection.Batch;
        Tick();
        Assert.Equal(1, _collected); // Collect allocated 2 MiB "during" this check

        _parks += ParkedCollection.Batch;
        Tick();
        Assert.Equal(2, _collected);
    }

    private void Tick() => _time.Advance(ParkedCollection.Interval);

    private (long Before, long After, TimeSpan Pause) Collect()
    {
        _collected++;
        _allocated += 2 * ParkedCollection.QuietAllocatedBytes;
        return (50 << 20, 10 << 20, TimeSpan.FromMilliseconds(7));
    }
}
