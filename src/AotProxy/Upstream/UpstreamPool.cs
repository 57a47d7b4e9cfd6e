using AotProxy.Hosting.Epoll;

namespace AotProxy.Upstream;

// The idle keep-alive connections to one worker, most recently used first (warm, and the
// oldest age out). A connection is in the pool or in one request's hands, never both.
// loops: set when server.transport = "epoll" (plain-HTTP connections then join an epoll loop).
internal sealed class UpstreamPool(UpstreamEndpoint endpoint, TimeProvider time, EpollClientLoops? loops = null)
{
    // Below uvicorn's 5 s keep-alive (vLLM's server): we close first, so a request never meets
    // a connection the worker is closing at that very moment.
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(4);

    // Past this idle time, a connection is probed (one poll syscall) before it is reused.
    private static readonly TimeSpan ProbeAfter = TimeSpan.FromSeconds(1);

    // Idle connections kept per worker: enough for a burst of 1,024 concurrent requests.
    private const int MaxIdle = 1024;

    private readonly Lock _lock = new();
    private readonly Stack<UpstreamConnection> _idle = new();
    private bool _closed;

    public UpstreamEndpoint Endpoint => endpoint;

    public int IdleCount
    {
        get
        {
            lock (_lock)
            {
                return _idle.Count;
            }
        }
    }

    public async ValueTask<UpstreamConnection> RentAsync(TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        while (TryPop(out var connection))
        {
            if (time.GetElapsedTime(connection.IdleSince) < ProbeAfter || connection.LooksAlive())
            {
                return connection;
            }

            await connection.DisposeAsync().ConfigureAwait(false);
        }

        return await UpstreamConnection.ConnectAsync(endpoint, loops, connectTimeout, cancellationToken).ConfigureAwait(false);
    }

    // Call only with a connection whose last response was read to its end.
    public ValueTask ReturnAsync(UpstreamConnection connection)
    {
        if (connection.TryResetForReuse())
        {
            connection.Reused = true;
            connection.IdleSince = time.GetTimestamp();
            lock (_lock)
            {
                if (!_closed && _idle.Count < MaxIdle)
                {
                    _idle.Push(connection);
                    return ValueTask.CompletedTask;
                }
            }
        }

        return connection.DisposeAsync();
    }

    // Closes connections idle longer than IdleTimeout (a timer calls this about once a second).
    public async ValueTask ScavengeAsync()
    {
        List<UpstreamConnection>? expired = null;
        lock (_lock)
        {
            // The stack's bottom holds the oldest: rebuild it without the expired ones.
            if (_idle.Count > 0 && time.GetElapsedTime(Oldest().IdleSince) >= IdleTimeout)
            {
                var keep = new List<UpstreamConnection>(_idle.Count);
                foreach (var connection in _idle)
                {
                    if (time.GetElapsedTime(connection.IdleSince) >= IdleTimeout)
                    {
                        (expired ??= []).Add(connection);
                    }
                    else
                    {
                        keep.Add(connection);
                    }
                }

                _idle.Clear();
                for (var i = keep.Count - 1; i >= 0; i--)
                {
                    _idle.Push(keep[i]);
                }
            }
        }

        await DisposeAllAsync(expired).ConfigureAwait(false);
    }

    // The worker left the config: idle connections close now, busy ones when their request ends.
    public async ValueTask CloseAsync()
    {
        List<UpstreamConnection> idle;
        lock (_lock)
        {
            _closed = true;
            idle = [.. _idle];
            _idle.Clear();
        }

        await DisposeAllAsync(idle).ConfigureAwait(false);
    }

    private UpstreamConnection Oldest()
    {
        UpstreamConnection? last = null;
        foreach (var connection in _idle)
        {
            last = connection;
        }

        return last!;
    }

    private bool TryPop(out UpstreamConnection connection)
    {
        lock (_lock)
        {
            return _idle.TryPop(out connection!);
        }
    }

    private static async ValueTask DisposeAllAsync(List<UpstreamConnection>? connections)
    {
        foreach (var connection in connections ?? [])
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
