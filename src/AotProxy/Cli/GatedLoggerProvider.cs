using AotProxy.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Cli;

// Another provider's loggers, except that one event of one category (one a client can cause at
// will) passes a LogThrottle first.
internal sealed class GatedLoggerProvider(ILoggerProvider inner, string category, int eventId, LogThrottle throttle) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName)
    {
        var logger = inner.CreateLogger(categoryName);
        return string.Equals(categoryName, category, StringComparison.Ordinal) ? new GatedLogger(logger, eventId, throttle) : logger;
    }

    public void Dispose() => inner.Dispose();
}
