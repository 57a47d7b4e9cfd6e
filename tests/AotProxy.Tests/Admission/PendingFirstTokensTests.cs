using AotProxy.Admission;

namespace AotProxy.Tests.Admission;

// The set of arrivals awaiting a first token: the oldest is known while slots last, a full set
// tracks no newcomer (the oldest stay), and a watch gives its slot back once, whatever ends it.
public sealed class PendingFirstTokensTests
{
    [Fact]
    public void Oldest_IsTheEarliestArrivalHeld_AndAFullSetTracksNoNewcomer()
    {
        var pending = new PendingFirstTokens();
        Assert.Equal(0, pending.Oldest());

        var slots = Enumerable.Range(0, PendingFirstTokens.Slots).Select(i => pending.Add(1_000 + i)).ToArray();
        Assert.Equal(PendingFirstTokens.Slots, slots.Distinct().Count());
        Assert.Equal(-1, pending.Add(10));
        Assert.Equal(1_000, pending.Oldest());

        pending.Remove(slots[0]);
        Assert.Equal(1_001, pending.Oldest());
        Assert.Equal(slots[0], pending.Add(5));
        Assert.Equal(5, pending.Oldest());
    }

    [Fact]
    public void AWatch_GivesItsSlotBackOnce_AndAStartAgainMovesIt()
    {
        var (pending, other) = (new PendingFirstTokens(), new PendingFirstTokens());
        var watch = new FirstTokenWatch();
        watch.Start(pending, 100);
        Assert.Equal(100, pending.Oldest());

        watch.Start(other, 100); // requeued under another class's set: out of the first
        Assert.Equal((0L, 100L), (pending.Oldest(), other.Oldest()));

        var held = other.Add(200);
        watch.End();
        watch.End(); // the request's end after its first token: nothing more
        Assert.Equal(200, other.Oldest());
        other.Remove(held);

        watch.Start(null, 100); // protection off
        watch.End();
        Assert.Equal((0L, 0L), (pending.Oldest(), other.Oldest()));
    }
}
