namespace AotProxy.Configuration;

internal sealed record ForwardingModel(
    TimeSpan ConnectTimeout,   // TCP connect to a worker
    TimeSpan ActivityTimeout); // longest silence on an upstream response (reset by every read)
