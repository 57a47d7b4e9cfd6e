using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace AotProxy.Simulator;

// What vLLM run with --otlp-traces-endpoint exports: one SERVER span per generate request, named
// `llm_request`, the child of the request's W3C traceparent (so a gateway's trace continues into
// the worker), with vLLM's gen_ai attributes (vllm/tracing.py SpanAttributes). One source and one
// provider per worker: several workers share a process in `aotproxy demo` and in tests.
internal sealed class SimulatorTracing : IDisposable
{
    // The batch processor's delay before a partial batch goes out: short, so a trace is whole
    // within a second of its request in the demo and in tests (vLLM keeps the SDK's 5 s).
    private const int ExportDelayMs = 200;

    private readonly ActivitySource? _source;
    private readonly TracerProvider? _provider;

    public SimulatorTracing(SimulatorOptions options)
    {
        if (options.OtlpTracesEndpoint is not { } traces)
        {
            return;
        }

        _source = new ActivitySource("AotProxy.Simulator." + options.Name);
        var exporter = new OtlpTraceExporter(new OtlpExporterOptions
        {
            Endpoint = traces,
            Protocol = OtlpExportProtocol.HttpProtobuf,
        });
        _provider = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService("vllm", serviceInstanceId: options.Name))
            .SetSampler(new ParentBasedSampler(new AlwaysOnSampler()))
            .AddSource(_source.Name)
            .AddProcessor(new BatchActivityExportProcessor(exporter, scheduledDelayMilliseconds: ExportDelayMs))
            .Build();
    }

    public Activity? Start(HttpContext context)
    {
        if (_source is null)
        {
            return null;
        }

        var headers = context.Request.Headers;
        ActivityContext.TryParse(headers.TraceParent.ToString(), headers.TraceState.ToString(), isRemote: true, out var parent);
        return _source.StartActivity("llm_request", ActivityKind.Server, parent);
    }

    public static void Stop(Activity? span, string requestId, string model, int maxTokens, int promptTokens, int completionTokens)
    {
        if (span is null)
        {
            return;
        }

        if (span.IsAllDataRequested)
        {
            span.SetTag("gen_ai.request.id", requestId);
            span.SetTag("gen_ai.response.model", model);
            span.SetTag("gen_ai.request.max_tokens", maxTokens);
            span.SetTag("gen_ai.usage.prompt_tokens", promptTokens);
            span.SetTag("gen_ai.usage.completion_tokens", completionTokens);
            span.SetTag("gen_ai.latency.e2e", (DateTime.UtcNow - span.StartTimeUtc).TotalSeconds);
        }

        span.Stop();
    }

    // Flushes what the batch holds.
    public void Dispose()
    {
        _provider?.Dispose();
        _source?.Dispose();
    }
}
