using Microsoft.Extensions.Logging;

namespace AotProxy.Cli;

// GatedLoggerProvider's logger for the gated category: the gated event is written only when the
// gate lets it pass; everything else goes straight through.
internal sealed class GatedLogger(ILogger inner, int eventId, LogGate gate) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (id.Id != eventId || gate.TryPass())
        {
            inner.Log(logLevel, id, state, exception, formatter);
        }
    }
}
