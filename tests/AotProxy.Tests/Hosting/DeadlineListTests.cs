using AotProxy.Hosting.Parking;

namespace AotProxy.Tests.Hosting;

// The parking listener's deadline lists: nodes come off the head in the order they were added,
// a removed node leaves no trace, a replacement takes the old node's place and deadline.
public sealed class DeadlineListTests
{
    [Fact]
    public void AddRemoveReplace_KeepTheOrder_AndMoveNodesBetweenLists()
    {
        var idle = new DeadlineList();
        var parked = new DeadlineList();
        var (a, b, c, d) = (new Node(1), new Node(2), new Node(3), new Node(4));
        idle.AddLast(a);
        idle.AddLast(b);
        idle.AddLast(c);
        Assert.Equal([1, 2, 3], Walk(idle));

        idle.Remove(b);
        idle.Remove(b); // not in it any more: nothing happens
        parked.Remove(a); // in the other list: nothing happens
        Assert.Equal([1, 3], Walk(idle));
        Assert.Null(b.Owner);

        parked.AddLast(a); // moves it
        Assert.Equal([3], Walk(idle));
        Assert.Equal([1], Walk(parked));

        Assert.True(parked.Replace(a, d));
        Assert.Equal([4], Walk(parked));
        Assert.Equal(10, d.IdleSince); // a's deadline
        Assert.Null(a.Owner);
        Assert.False(parked.Replace(a, b)); // a is no longer listed

        idle.AddLast(d);
        idle.AddLast(c); // already in: to the end
        Assert.Equal([4, 3], Walk(idle));
        Assert.Empty(Walk(parked));
        idle.Remove(c);
        idle.Remove(d);
        Assert.Null(idle.First);
    }

    private static List<int> Walk(DeadlineList list)
    {
        var seen = new List<int>();
        for (var node = list.First; node is not null; node = node.Next)
        {
            seen.Add(((Node)node).Id);
        }

        return seen;
    }

    private sealed class Node : ParkingNode
    {
        public Node(int id)
        {
            Id = id;
            IdleSince = id * 10;
        }

        public int Id { get; }

        internal override bool CloseParked() => false;
    }
}
