using Microsoft.Extensions.Logging;

namespace AotProxy.Cli;

// Another provider's loggers, except that one event of one category (one a client can cause at
// will) passes a LogGate first.
internal sealed class GatedLoggerProvider(ILoggerProvider inner, string category, int eventId, LogGate gate) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName)
    {
        var logger = inner.CreateLogger(categoryName);
        return string.Equals(categoryName, category, StringComparison.Ordinal) ? new GatedLogger(logger, eventId, gate) : logger;
    }

    public void Dispose() => inner.Dispose();
}
