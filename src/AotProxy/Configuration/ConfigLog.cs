using Microsoft.Extensions.Logging;

namespace AotProxy.Configuration;

// Log messages of the Configuration area. Event ids 100-199 belong to it and never change
// meaning, so that alerts can match on them.
internal static partial class ConfigLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Configuration reloaded from {Source}: revision {Revision} is now in force")]
    public static partial void ReloadApplied(ILogger logger, string source, long revision);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Configuration change in {Source} rejected with {ErrorCount} error(s); revision {Revision} stays in force")]
    public static partial void ReloadRejected(ILogger logger, string source, int errorCount, long revision);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "{Source}: line {Line}: {Key}: {Problem}")]
    public static partial void ConfigProblem(ILogger logger, string source, int line, string key, string problem);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Configuration reload is unavailable: {Reason}")]
    public static partial void ReloadUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Watching {Path} for changes (debounce {DebounceMs} ms)")]
    public static partial void WatchStarted(ILogger logger, string path, double debounceMs);

    [LoggerMessage(EventId = 111, Level = LogLevel.Debug, Message = "{Path} changed ({ChangeType}); reloading after the debounce")]
    public static partial void ChangeSeen(ILogger logger, string path, WatcherChangeTypes changeType);

    // Debug, as 111: a directory such as /etc sees many writes, and each is one line here. It
    // answers "why did my edit not reload?" (the name the watcher saw) and lets a test wait for
    // an event that must change nothing.
    [LoggerMessage(EventId = 115, Level = LogLevel.Debug, Message = "{Name} changed ({ChangeType}) next to {Path}; not the configuration, ignored")]
    public static partial void ChangeIgnored(ILogger logger, string path, string? name, WatcherChangeTypes changeType);

    [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "{Path} is a symlink to {Target}: watching the target too")]
    public static partial void WatchTarget(ILogger logger, string path, string target);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "The file watcher on {Path} reported an error; reloading to catch up")]
    public static partial void WatcherFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 113, Level = LogLevel.Error, Message = "Reloading {Path} threw; the previous configuration stays in force")]
    public static partial void ReloadThrew(ILogger logger, string path, Exception exception);
}
