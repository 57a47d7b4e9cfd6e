using StackExchange.Redis;

namespace AotProxy.Cluster;

// One tenant's block of its fleet-wide RPM, TPM and in-flight places that this replica leased from
// the store (SharedTenantLimits' lease script), so that a replica far from the tenant's limits
// decides most requests locally (docs/CLUSTER.md, "Leased blocks"). Requests and tokens are
// charged to the Redis second the block was taken in and used only while that second lasts on the
// local clock (Until), so every decision still counts in the bin of its second: the window's bound
// is the per-request script's. Places are the replica's part of the tenant's in_flight (what the
// store counts for it, HeldParts): leased, and used by the requests holding one.
// What goes back to the store waits for the next flush (TakeReturns): per second, requests and
// tokens to add to its bins (negative: unused units, a request that never went upstream; a TPM
// settlement's usage minus its estimate), and places leased above use.
internal sealed class TenantLease(string tenant, RedisKey[] keys)
{
    // A block never asks for more than this (requests, or places): a replica's second at most.
    public const long MaxWant = 4096;

    private readonly Lock _lock = new();
    private readonly Dictionary<long, (long Requests, long Tokens)> _returns = [];
    private long _second;
    private long _until;
    private long _requests;
    private long _tokens;
    private long _leased;
    private long _used;
    private long _placesBack;
    private bool _placeTaken;
    private long _decided;
    private long _previous;
    private long _block;
    private TaskCompletionSource<SharedTake>? _call;

    public string Tenant => tenant;

    // The tenant's four keys (SharedTenantLimits' scripts).
    public RedisKey[] Keys => keys;

    // Places this replica holds in the store for the tenant (its part of in_flight).
    public long Leased
    {
        get
        {
            lock (_lock)
            {
                return _leased;
            }
        }
    }

    // Taken from the block while its second lasts (now: the local timestamp), with no call. Else
    // false: call is the lease script under way (its answer to the request that sent it) that the
    // caller waits for before it looks again, or null when the caller is to send the next one
    // itself (EndCall when answered): one call at a time per tenant, however many requests find
    // the block empty.
    public bool TryTake(in SharedDemand demand, long now, out long second, out Task<SharedTake>? call)
    {
        lock (_lock)
        {
            second = _second;
            call = null;
            Expire(now);
            if (now < _until && Fits(demand))
            {
                Take(demand);
                return true;
            }

            if (_call is { } running)
            {
                call = running.Task;
                return false;
            }

            _call = new TaskCompletionSource<SharedTake>(TaskCreationOptions.RunContinuationsAsynchronously);
            return false;
        }
    }

    public void EndCall(SharedTake answer)
    {
        TaskCompletionSource<SharedTake>? call;
        lock (_lock)
        {
            call = _call;
            _call = null;
        }

        call?.SetResult(answer);
    }

    // What the next block asks for (now: the local timestamp, second: the stopwatch's ticks per
    // second): what this replica decided for the tenant in the previous second, twice the last
    // block when it ran out within its second, at least the request itself; tokens as many times
    // this request's; places as many as are in use (the request's own and as many spare, less one).
    public (long Requests, long Tokens, long Places) Want(in SharedDemand demand, long now, long second)
    {
        lock (_lock)
        {
            var within = now < _until;
            var previous = within ? _previous : now < _until + second ? _decided : 0;
            var requests = Math.Min(MaxWant, Math.Max(1, Math.Max(previous, within ? 2 * _block : 0)));
            var tokens = demand.Tokens <= 0 ? 0 : demand.Tokens * requests;
            return (requests, tokens, Math.Min(MaxWant, Math.Max(1, _used)));
        }
    }

    // The lease script granted requests, tokens and places in Redis second `second`, usable until
    // `until` (local timestamp): the caller's own request takes its part at once (it was admitted
    // in that second), the rest is the block.
    public void Grant(in SharedDemand demand, long second, long until, long requests, long tokens, long places, long now)
    {
        lock (_lock)
        {
            if (second != _second)
            {
                Expire(long.MaxValue); // the old second's units go back to its bin
                _previous = second == _second + 1 ? _decided : 0;
                _decided = 0;
                _second = second;
            }

            _until = until;
            _requests += requests;
            _tokens += tokens;
            _leased += places;
            _block = Math.Max(requests, demand.Tokens > 0 ? tokens / demand.Tokens : 0); // in requests, for a TPM alone too
            Take(demand);
            Expire(now); // answered after its second ended: nothing of the block is usable
        }
    }

    // The settlement of a request this lease admitted in `second`. admitted = false: its request
    // and tokens go back to the block while that second lasts, else to their bin; otherwise its
    // tokens move to the usage (moved: usage - estimate). Returns the places given back (HeldParts).
    public long Settle(in SharedDemand demand, long second, bool admitted, long moved, long now)
    {
        lock (_lock)
        {
            if (!admitted)
            {
                var requests = demand.Rpm > 0 ? 1 : 0;
                var tokens = demand.Tpm > 0 ? demand.Tokens : 0;
                if (second == _second && now < _until)
                {
                    _requests += requests;
                    _tokens += tokens;
                }
                else
                {
                    Return(second, -requests, -tokens);
                }
            }
            else if (moved != 0)
            {
                Return(second, 0, moved);
            }

            if (demand.MaxInFlight <= 0)
            {
                return 0;
            }

            // Spare places: as many as are in use, at least one (a replica serving one request at a
            // time calls for none); the rest goes back, and the last one once idle (TakeReturns).
            _used--;
            return GiveBack(_leased - _used - Math.Max(_used, 1));
        }
    }

    // What the flush sends for this tenant: places to release (already taken off Leased and told
    // HeldParts by the caller through the result's Places), then per second (second, requests,
    // tokens) into args after the `skip` first arguments; null when nothing is pending. A block
    // whose second ended goes back here; spare places that no request took since the last flush go
    // back too (idle: a replica holds no place it does not use for longer than a flush).
    public RedisValue[]? TakeReturns(long now, int skip, out long places, out long idle)
    {
        lock (_lock)
        {
            Expire(now);
            idle = _placeTaken ? 0 : GiveBack(_leased - _used);
            _placeTaken = false;
            places = _placesBack;
            if (places == 0 && _returns.Count == 0)
            {
                return null;
            }

            var args = new RedisValue[skip + (3 * _returns.Count)];
            var i = skip;
            foreach (var (second, (requests, tokens)) in _returns)
            {
                args[i++] = second;
                args[i++] = requests;
                args[i++] = tokens;
            }

            _returns.Clear();
            _placesBack = 0;
            return args;
        }
    }

    // After an outage or an empty restart (StoreResync, before its reconcile): the block is gone,
    // the places leased become those used (what the reconcile sets this replica's part to), and
    // what waited for a flush is dropped (the bins it named may be gone; the parts are reconciled).
    // Returns the change of the places leased (HeldParts).
    public long Drop()
    {
        lock (_lock)
        {
            var change = Math.Max(_used, 0) - _leased;
            _leased = Math.Max(_used, 0);
            _requests = 0;
            _tokens = 0;
            _until = 0;
            _placesBack = 0;
            _returns.Clear();
            return change;
        }
    }

    private bool Fits(in SharedDemand demand) =>
        (demand.Rpm <= 0 || _requests >= 1)
        && (demand.Tpm <= 0 || _tokens >= demand.Tokens)
        && (demand.MaxInFlight <= 0 || _used < _leased);

    private void Take(in SharedDemand demand)
    {
        if (demand.Rpm > 0)
        {
            _requests--;
        }

        if (demand.Tpm > 0)
        {
            _tokens -= demand.Tokens;
        }

        if (demand.MaxInFlight > 0)
        {
            _used++;
            _placeTaken = true;
        }

        _decided++;
    }

    // The block's second has ended: what it still holds goes back to that second's bin.
    private void Expire(long now)
    {
        if (now < _until || (_requests == 0 && _tokens == 0))
        {
            return;
        }

        Return(_second, -_requests, -_tokens);
        _requests = 0;
        _tokens = 0;
    }

    private void Return(long second, long requests, long tokens)
    {
        if (requests == 0 && tokens == 0)
        {
            return;
        }

        _returns[second] = _returns.TryGetValue(second, out var pending) ? (pending.Requests + requests, pending.Tokens + tokens) : (requests, tokens);
    }

    private long GiveBack(long places)
    {
        if (places <= 0)
        {
            return 0;
        }

        _leased -= places;
        _placesBack += places;
        return places;
    }
}
