using System.Collections.Frozen;

namespace AotProxy.Configuration;

internal sealed record ForwardingModel(
    TimeSpan ConnectTimeout,   // TCP connect to a worker
    TimeSpan ActivityTimeout,  // longest silence on a non-stream upstream response (reset by every read)
    TimeSpan StreamIdleTimeout = default, // a stream's: before its first event and between events; default: 60 s
    FrozenDictionary<string, TimeSpan>? ModelStreamIdleTimeouts = null) // [[models]] stream_idle_timeout, by name
{
    public static readonly TimeSpan DefaultStreamIdleTimeout = TimeSpan.FromSeconds(60);

    // The window a stream of `model` gets: its [[models]] entry's, else [forwarding]'s.
    public TimeSpan StreamIdleTimeoutFor(string model) =>
        ModelStreamIdleTimeouts is { } byModel && byModel.TryGetValue(model, out var window) ? window
        : StreamIdleTimeout > TimeSpan.Zero ? StreamIdleTimeout
        : DefaultStreamIdleTimeout;
}
