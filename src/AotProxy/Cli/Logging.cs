using AotProxy.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace AotProxy.Cli;

internal static class Logging
{
    // Kestrel warns once per connection it refuses at server.max_connections (event 24 of this
    // category, "... rejected because the maximum number of concurrent connections has been
    // reached"): one such line per 10 s says the cap is being hit.
    private const string KestrelConnections = "Microsoft.AspNetCore.Server.Kestrel.Connections";
    private const int ConnectionRejected = 24;

    // AOTPROXY_LOG_LEVEL=Debug|Information|Warning|Error; Kestrel's own chatter stays at Warning.
    public static ILoggerFactory Create()
    {
        var level = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("AOTPROXY_LOG_LEVEL"), ignoreCase: true, out var parsed)
            ? parsed
            : LogLevel.Information;
        var rejections = new LogThrottle(TimeSpan.FromSeconds(10), TimeProvider.System);
        return LoggerFactory.Create(builder =>
        {
            builder
                .SetMinimumLevel(level)
                .AddFilter("Microsoft", LogLevel.Warning)
                .AddSimpleConsole(options =>
                {
                    options.SingleLine = true;
                    options.TimestampFormat = "HH:mm:ss.fff ";
                    options.UseUtcTimestamp = true;
                });

            // The console provider, wrapped: a filter cannot do it, since it runs for IsEnabled
            // and again for Log, and would take two turns of the throttle per line.
            var console = builder.Services.Single(d => d.ServiceType == typeof(ILoggerProvider) && d.ImplementationType == typeof(ConsoleLoggerProvider));
            builder.Services.Remove(console);
            builder.Services.AddSingleton<ILoggerProvider>(services => new GatedLoggerProvider(
                new ConsoleLoggerProvider(services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>(), services.GetServices<ConsoleFormatter>()),
                KestrelConnections,
                ConnectionRejected,
                rejections));
        });
    }
}
