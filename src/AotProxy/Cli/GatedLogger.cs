using AotProxy.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Cli;

// GatedLoggerProvider's logger for the gated category: the gated event is written only when the
// throttle lets it through; everything else goes straight through. (Kestrel's text is fixed, so
// the count of lines held back is not added to it.)
internal sealed class GatedLogger(ILogger inner, int eventId, LogThrottle throttle) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (id.Id != eventId || throttle.TryEnter(out _))
        {
            inner.Log(logLevel, id, state, exception, formatter);
        }
    }
}
