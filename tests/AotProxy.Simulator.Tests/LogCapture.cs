using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace AotProxy.Simulator.Tests;

// Every entry a worker logs, its own and Kestrel's, for tests that assert on the log.
internal sealed class LogCapture : ILoggerFactory
{
    private readonly ConcurrentQueue<(string Category, LogLevel Level, string Message, Exception? Exception)> _entries = new();

    // Warnings and above, one per line with their exceptions: "" when there were none.
    public string Problems => string.Join('\n', _entries.Where(e => e.Level >= LogLevel.Warning).Select(e => $"{e.Category} {e.Level}: {e.Message} {e.Exception}"));

    public ILogger CreateLogger(string categoryName) => new Logger(_entries, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Logger(ConcurrentQueue<(string, LogLevel, string, Exception?)> entries, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            entries.Enqueue((category, logLevel, formatter(state, exception), exception));
    }
}
