using AotProxy.Hosting.Epoll;

namespace AotProxy.Upstream;

// The idle keep-alive connections to one worker, most recently used first (warm, and the
// oldest age out). A connection is in the pool or in one request's hands, never both.
// loops: set when server.transport = "epoll" (plain-HTTP connections then join an epoll loop).
// A request whose walk belongs to an epoll loop (its client connection's, else the thread's) takes
// an idle connection of that loop, or opens one there: on another loop, the answer would be read
// on that loop's thread and handed back, a thread switch per response event (perf/RESULTS.md,
// issue 22, branches ttft22c and hop22).
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
    private readonly List<UpstreamConnection> _idle = []; // the last is the most recently returned
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

    // clientLoop: the epoll loop of the client connection the request came on (null: none known).
    public async ValueTask<UpstreamConnection> RentAsync(EpollLoop? clientLoop, TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        var here = loops is null ? null : EpollClientLoops.Of(clientLoop);
        while (TryPop(here, out var connection))
        {
            if (time.GetElapsedTime(connection.IdleSince) < ProbeAfter || connection.LooksAlive())
            {
                return connection;
            }

            await connection.DisposeAsync().ConfigureAwait(false);
        }

        return await UpstreamConnection.ConnectAsync(endpoint, loops, here, connectTimeout, cancellationToken).ConfigureAwait(false);
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
                    _idle.Add(connection);
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
            // The first holds the oldest (returned first): nothing to do until it has expired.
            if (_idle.Count > 0 && time.GetElapsedTime(_idle[0].IdleSince) >= IdleTimeout)
            {
                var kept = 0;
                for (var i = 0; i < _idle.Count; i++)
                {
                    var connection = _idle[i];
                    if (time.GetElapsedTime(connection.IdleSince) >= IdleTimeout)
                    {
                        (expired ??= []).Add(connection);
                    }
                    else
                    {
                        _idle[kept++] = connection;
                    }
                }

                _idle.RemoveRange(kept, _idle.Count - kept);
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

    // The most recent idle connection the request's loop can serve without a thread switch:
    // any, with no loop (here null) or for a connection on no loop (TLS, the sockets transport).
    // A scan past other loops' connections happens only with several loops, under MaxIdle at worst.
    private bool TryPop(EpollLoop? here, out UpstreamConnection connection)
    {
        lock (_lock)
        {
            for (var i = _idle.Count - 1; i >= 0; i--)
            {
                var candidate = _idle[i];
                if (here is null || candidate.Loop is null || candidate.Loop == here)
                {
                    _idle.RemoveAt(i);
                    connection = candidate;
                    return true;
                }
            }
        }

        connection = null!;
        return false;
    }

    private static async ValueTask DisposeAllAsync(List<UpstreamConnection>? connections)
    {
        foreach (var connection in connections ?? [])
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }
}
