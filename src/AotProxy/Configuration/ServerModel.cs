using System.Collections.Immutable;
using System.Net;
using AotProxy.Hosting;

namespace AotProxy.Configuration;

internal sealed record ServerModel(
    IPEndPoint Listen,
    IPEndPoint AdminListen,
    ImmutableArray<byte> AdminTokenSha256, // empty: the admin API is open
    long MaxRequestBytes,
    TimeSpan ShutdownGrace,
    IPEndPoint? H2cListen = null, // null: no h2c listener
    int MaxConnections = 10_000,  // 0: no limit
    int MaxHeaderBytes = 32 * 1024,
    ListenerTransport Transport = ListenerTransport.Sockets,
    TimeSpan ParkIdleAfter = default); // zero: idle keep-alive connections are not parked
