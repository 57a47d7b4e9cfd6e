using AotProxy.Configuration;
using AotProxy.Gateway;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AotProxy.Tracing;

// The tracer provider behind [telemetry] otlp_endpoint: built when the endpoint is set, at start
// or by a reload; rebuilt when a reload changes the export's keys; disposed when one clears it,
// after which GatewayTracing.Source has no listener again and tracing costs one check per stage.
internal sealed class TraceExport(TraceTelemetry telemetry, ILogger logger) : IAsyncDisposable
{
    // The OTLP exporter's own default: how long one export may wait for the receiver.
    private const int ExportTimeoutMs = 10_000;

    private readonly Lock _lock = new();
    private TelemetryModel? _applied;
    private TracerProvider? _provider;
    private Task _retiring = Task.CompletedTask;

    public bool IsOn => Volatile.Read(ref _provider) is not null;

    // The providers a reload replaced, flushing and stopping; done: they no longer listen.
    public Task Retired
    {
        get
        {
            lock (_lock)
            {
                return _retiring;
            }
        }
    }

    public void Apply(TelemetryModel model)
    {
        TracerProvider? old;
        lock (_lock)
        {
            if (_applied is { } applied && SameExport(applied, model))
            {
                return;
            }

            old = _provider;
            _provider = model.OtlpTraces is { } traces ? Build(model, traces) : null;
            _applied = model;
            if (model.OtlpTraces is { } on)
            {
                GatewayLog.TracingOn(logger, on, model.ServiceName, model.SampleRatio);
            }
            else if (old is not null)
            {
                GatewayLog.TracingOff(logger);
            }

            // Off the reload's thread: the old provider flushes what it holds, for as long as its
            // receiver takes to answer (ExportTimeoutMs at most).
            if (old is not null)
            {
                _retiring = _retiring.ContinueWith(_ => old.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        TracerProvider? provider;
        Task retiring;
        lock (_lock)
        {
            provider = _provider;
            _provider = null;
            retiring = _retiring;
        }

        provider?.Dispose();
        await retiring.ConfigureAwait(false);
    }

    private static bool SameExport(TelemetryModel a, TelemetryModel b) =>
        a.OtlpTraces == b.OtlpTraces && a.ServiceName == b.ServiceName && a.SampleRatio.Equals(b.SampleRatio) && a.MaxQueuedSpans == b.MaxQueuedSpans;

    private TracerProvider Build(TelemetryModel model, Uri traces)
    {
        var exporter = new OtlpTraceExporter(new OtlpExporterOptions
        {
            Endpoint = traces,
            Protocol = OtlpExportProtocol.HttpProtobuf,
            TimeoutMilliseconds = ExportTimeoutMs,
        });
        return Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(model.ServiceName, serviceVersion: GatewayVersion.Text))
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(model.SampleRatio)))
            .AddSource(GatewayTracing.SourceName)
            .AddProcessor(new SpanQueue(exporter, model.MaxQueuedSpans, telemetry))
            .Build();
    }
}
