namespace AotProxy.Hosting.Parking;

// An intrusive doubly linked list of parking nodes, in the order they were added. The listener adds
// a node when its idle period begins (or, once parked, in the order the tick parks them), and every
// node's deadline is IdleSince plus one constant, so the list is in deadline order: the tick takes
// what is due from the head and never walks the rest. Not thread-safe: the listener's lock guards it.
internal sealed class DeadlineList
{
    private ParkingNode? _last;

    public ParkingNode? First { get; private set; }

    // Appends the node, taking it out of the list it was in first.
    public void AddLast(ParkingNode node)
    {
        node.Owner?.Remove(node);
        node.Owner = this;
        node.Previous = _last;
        if (_last is null)
        {
            First = node;
        }
        else
        {
            _last.Next = node;
        }

        _last = node;
    }

    public void Remove(ParkingNode node)
    {
        if (node.Owner != this)
        {
            return;
        }

        if (node.Previous is null)
        {
            First = node.Next;
        }
        else
        {
            node.Previous.Next = node.Next;
        }

        if (node.Next is null)
        {
            _last = node.Previous;
        }
        else
        {
            node.Next.Previous = node.Previous;
        }

        node.Previous = node.Next = null;
        node.Owner = null;
    }

    // `node` takes `old`'s place (and its deadline); false when `old` is not in this list.
    public bool Replace(ParkingNode old, ParkingNode node)
    {
        if (old.Owner != this)
        {
            return false;
        }

        node.Owner?.Remove(node);
        node.Owner = this;
        node.IdleSince = old.IdleSince;
        node.Previous = old.Previous;
        node.Next = old.Next;
        if (old.Previous is null)
        {
            First = node;
        }
        else
        {
            old.Previous.Next = node;
        }

        if (old.Next is null)
        {
            _last = node;
        }
        else
        {
            old.Next.Previous = node;
        }

        old.Previous = old.Next = null;
        old.Owner = null;
        return true;
    }
}
