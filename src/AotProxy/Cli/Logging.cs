using Microsoft.Extensions.Logging;

namespace AotProxy.Cli;

internal static class Logging
{
    // AOTPROXY_LOG_LEVEL=Debug|Information|Warning|Error; Kestrel's own chatter stays at Warning.
    public static ILoggerFactory Create()
    {
        var level = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("AOTPROXY_LOG_LEVEL"), ignoreCase: true, out var parsed)
            ? parsed
            : LogLevel.Information;
        return LoggerFactory.Create(builder => builder
            .SetMinimumLevel(level)
            .AddFilter("Microsoft", LogLevel.Warning)
            .AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.TimestampFormat = "HH:mm:ss.fff ";
                options.UseUtcTimestamp = true;
            }));
    }
}
