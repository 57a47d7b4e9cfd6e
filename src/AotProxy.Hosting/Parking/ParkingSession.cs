using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace AotProxy.Hosting.Parking;

// What Kestrel sees of a transport connection for one session: from the connection's accept or
// its last park to its next park or its end, one Kestrel connection. Identity, endpoints, items
// and the closed token are the transport's; the pipes are wrappers that can end the session
// without ending the socket. Kestrel sets its per-connection features (heartbeat, lifetime) on
// this session's own collection, so they go with it.
internal sealed class ParkingSession : ConnectionContext, IDuplexPipe
{
    private readonly ConnectionContext _transport;

    public ParkingSession(ConnectionContext transport, ParkableConnection connection)
    {
        _transport = transport;
        Connection = connection;
        Input = new SessionInput(transport.Transport.Input, this);
        Output = new SessionOutput(transport.Transport.Output, this);
        var features = new FeatureCollection(transport.Features);
        features.Set(connection);
        Features = features;
    }

    public ParkableConnection Connection { get; }

    // Set when the input reported the end that parks the connection: from then on this session's
    // completions, cancels and aborts are Kestrel ending its connection, not the socket's.
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

    // Kestrel is done with this session: the transport closes, unless it parks.
    public override async ValueTask DisposeAsync()
    {
        await Connection.SessionEndedAsync(this).ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
