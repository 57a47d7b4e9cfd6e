using Microsoft.Extensions.Logging;

namespace AotProxy.Gateway;

// Event ids, a block of 100 per area, unique across the gateway and the simulator, which share
// a process and a console in `aotproxy demo` (LogEventIdTests): Gateway 1-99, Configuration
// 100-199, Routing 200-299, Http 300-399, Admin 400-499, Ledger 800-899, the simulator 1000-1099.
internal static partial class GatewayLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Serving the OpenAI API on {DataUri} and the admin API on {AdminUri} (config revision {Revision})")]
    public static partial void Listening(ILogger logger, Uri dataUri, Uri adminUri, long revision);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Shutting down: in-flight requests have {Grace} to finish")]
    public static partial void ShuttingDown(ILogger logger, TimeSpan grace);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "{Key} changed from {Old} to {New}: listeners are bound at startup, restart to apply it")]
    public static partial void RestartNeeded(ILogger logger, string key, string old, string @new);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Config revision {Revision} applied: {Workers} workers, {Tenants} tenants")]
    public static partial void Applied(ILogger logger, long revision, int workers, int tenants);

    [LoggerMessage(EventId = 6, Message = "Memory after loading the config: GC heap {BeforeMiB} MiB -> {AfterMiB} MiB, the rest returned to the OS in a {PauseMs:F0} ms pause")]
    public static partial void Compacted(ILogger logger, LogLevel level, long beforeMiB, long afterMiB, double pauseMs);

    [LoggerMessage(EventId = 9, Message = "Memory after {Parks} idle connections parked: GC heap {BeforeMiB} MiB -> {AfterMiB} MiB, the rest returned to the OS in a {PauseMs:F0} ms pause")]
    public static partial void CollectedParked(ILogger logger, LogLevel level, long parks, long beforeMiB, long afterMiB, double pauseMs);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Tracing: spans to {Traces} as service {ServiceName}, sample ratio {SampleRatio}")]
    public static partial void TracingOn(ILogger logger, Uri traces, string serviceName, double sampleRatio);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Tracing off")]
    public static partial void TracingOff(ILogger logger);
}
