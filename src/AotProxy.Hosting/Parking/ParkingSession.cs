using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Hosting.Parking;

// What Kestrel's HTTP layer sees of a transport connection for one session (from the connection's
// start or its last park to its next park or its end). Identity, endpoints, items and the closed
// token are the transport's; the pipes are wrappers that can end the session without ending the
// socket. Kestrel registers a heartbeat callback per HTTP connection and never removes it, so the
// session takes them (the transport's list would keep every ended session alive and ticking).
internal sealed class ParkingSession : ConnectionContext, IDuplexPipe, IConnectionHeartbeatFeature
{
    private readonly ConnectionContext _transport;
    private Action<object>? _heartbeat;
    private object? _heartbeatState;

    public ParkingSession(ConnectionContext transport, ParkableConnection connection)
    {
        _transport = transport;
        Connection = connection;
        Input = new SessionInput(transport.Transport.Input, this);
        Output = new SessionOutput(transport.Transport.Output, this);
        var features = new FeatureCollection(transport.Features);
        features.Set<IConnectionHeartbeatFeature>(this);
        Features = features;
    }

    public ParkableConnection Connection { get; }

    // Set when the input reported the end that parks the connection: from then on this session's
    // completions and aborts are Kestrel ending its HTTP state, not the socket's.
    public bool Parking { get; set; }

    public PipeReader Input { get; }

    public PipeWriter Output { get; }

    public override IDuplexPipe Transport
    {
        get => this;
        set => throw new NotSupportedException("The parking session's transport is fixed.");
    }

    public override string ConnectionId
    {
        get => _transport.ConnectionId;
        set => _transport.ConnectionId = value;
    }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items
    {
        get => _transport.Items;
        set => _transport.Items = value;
    }

    public override CancellationToken ConnectionClosed
    {
        get => _transport.ConnectionClosed;
        set => _transport.ConnectionClosed = value;
    }

    public override EndPoint? LocalEndPoint
    {
        get => _transport.LocalEndPoint;
        set => _transport.LocalEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _transport.RemoteEndPoint;
        set => _transport.RemoteEndPoint = value;
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        if (!Parking)
        {
            _transport.Abort(abortReason);
        }
    }

    public override void Abort()
    {
        if (!Parking)
        {
            _transport.Abort();
        }
    }

    // The transport is Kestrel's to dispose, when the middleware returns.
    public override ValueTask DisposeAsync() => base.DisposeAsync();

    // One HTTP connection per session registers here (HttpConnection's timeouts).
    public void OnHeartbeat(Action<object> action, object state)
    {
        if (_heartbeat is { } first)
        {
            // Not seen from Kestrel 10 (one per HTTP connection), but a second must tick too.
            var firstState = _heartbeatState!;
            _heartbeat = _ =>
            {
                first(firstState);
                action(state);
            };
            return;
        }

        _heartbeat = action;
        _heartbeatState = state;
    }

    internal void Tick()
    {
        if (!Parking && _heartbeat is { } action)
        {
            action(_heartbeatState!);
        }
    }
}
