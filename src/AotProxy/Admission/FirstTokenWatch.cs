namespace AotProxy.Admission;

// One request's place among its class's PendingFirstTokens, from its admission to its first token
// (the forwarder marks it) or its end, whichever comes first. One per pooled ProxyRequest, used
// by the request's own flow only: no object per request.
internal sealed class FirstTokenWatch
{
    private PendingFirstTokens? _pending;
    private int _slot;

    // pending: the class's set (null: protection is off, or the class is not in its order).
    public void Start(PendingFirstTokens? pending, long arrivedAt)
    {
        End();
        if (pending?.Add(arrivedAt) is >= 0 and var slot)
        {
            (_pending, _slot) = (pending, slot);
        }
    }

    // The first token came, or the request ended. Idempotent.
    public void End()
    {
        if (_pending is { } pending)
        {
            pending.Remove(_slot);
            _pending = null;
        }
    }
}
