using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Simulator;

// The whole simulated vLLM server as one RequestDelegate: KestrelListener serves it for
// SimulatedWorker, and tests can call HandleAsync on a DefaultHttpContext with no socket at all.
// Dispatch is a switch on the path, like vLLM's handful of routes; there is no middleware.
internal sealed class SimulatorApplication : IAsyncDisposable
{
    // What a misconfigured or half-dead exporter might serve: HTML plus lines that look almost,
    // but not quite, like samples. A scraper must reject the scrape, not read numbers out of it.
    private static readonly byte[] GarbageMetrics = Encoding.UTF8.GetBytes(
        "<html><head><title>502 Bad Gateway</title></head><body>\n" +
        "vllm:num_requests_running{engine=\"0\" 3.0 garbage\n" +
        "vllm:num_requests_waiting{engine=\"0\",model_name=\"x\"} not-a-number\n" +
        "}}}{{{ \u0001\u0002 # TYPE\n</body></html>\n");

    private readonly SimulatorOptions _options;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly OpenAiEndpoint _openAi;
    private readonly AudioEndpoint _audio;
    private readonly SimulatorControl _control;
    private readonly VllmMetricsWriter _metrics;
    private readonly SimulatorTracing _tracing;

    public SimulatorApplication(SimulatorOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        options.Validate();
        _options = options;
        Logger = loggerFactory.CreateLogger("AotProxy.Simulator");
        Stats = new SimulatorStats(options.NumGpuBlocks);
        Engine = new SimulatorEngine(options, Stats);
        _tracing = new SimulatorTracing(options);
        _openAi = new OpenAiEndpoint(options, Engine, Stats, _tracing, Logger, _shutdown.Token);
        _audio = new AudioEndpoint(options, Engine, Stats);
        _control = new SimulatorControl(options, Stats, Logger);
        _metrics = new VllmMetricsWriter(options, Stats, Engine);
    }

    public SimulatorOptions Options => _options;

    public SimulatorStats Stats { get; }

    internal SimulatorEngine Engine { get; }

    internal ILogger Logger { get; }

    public Task HandleAsync(HttpContext context)
    {
        var method = context.Request.Method;
        return context.Request.Path.Value switch
        {
            "/v1/chat/completions" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Chat) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/completions" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Completion) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/embeddings" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Embedding) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/responses" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Responses) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/messages" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Messages) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/rerank" or "/rerank" or "/v2/rerank" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Rerank) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/score" or "/score" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Score) : HttpResponses.MethodNotAllowedAsync(context),
            "/pooling" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Pooling) : HttpResponses.MethodNotAllowedAsync(context),
            "/classify" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Classify) : HttpResponses.MethodNotAllowedAsync(context),
            "/tokenize" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Tokenize) : HttpResponses.MethodNotAllowedAsync(context),
            "/detokenize" => HttpMethods.IsPost(method) ? _openAi.HandleAsync(context, RequestKind.Detokenize) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/audio/transcriptions" => HttpMethods.IsPost(method) ? _audio.HandleAsync(context, translate: false) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/audio/translations" => HttpMethods.IsPost(method) ? _audio.HandleAsync(context, translate: true) : HttpResponses.MethodNotAllowedAsync(context),
            "/v1/models" => HttpMethods.IsGet(method) ? ModelsAsync(context) : HttpResponses.MethodNotAllowedAsync(context),
            "/health" => HttpMethods.IsGet(method) ? HealthAsync(context) : HttpResponses.MethodNotAllowedAsync(context),
            "/metrics" => HttpMethods.IsGet(method) ? MetricsAsync(context) : HttpResponses.MethodNotAllowedAsync(context),
            "/sim/stats" => HttpMethods.IsGet(method) ? _control.GetStatsAsync(context) : HttpResponses.MethodNotAllowedAsync(context),
            "/sim/faults" => HttpMethods.IsPost(method) ? _control.SetFaultsAsync(context)
                : HttpMethods.IsGet(method) ? _control.GetFaultsAsync(context)
                : HttpResponses.MethodNotAllowedAsync(context),
            _ => HttpResponses.NotFoundAsync(context),
        };
    }

    // Cuts every in-flight /v1/* connection, as a dying vLLM process would.
    public void AbortAll()
    {
        if (!_shutdown.IsCancellationRequested)
        {
            _shutdown.Cancel();
        }
    }

    public async ValueTask DisposeAsync()
    {
        AbortAll();
        await Engine.DisposeAsync().ConfigureAwait(false);
        _shutdown.Dispose();
        _tracing.Dispose();
    }

    // vLLM answers 200 with an empty body, and 503 (also empty) once its engine is dead.
    private Task HealthAsync(HttpContext context) =>
        HttpResponses.SendAsync(context, _options.Faults.UnhealthyHealth ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK, null, ReadOnlyMemory<byte>.Empty);

    private Task MetricsAsync(HttpContext context)
    {
        var faults = _options.Faults;
        if (faults.MissingMetrics)
        {
            return HttpResponses.NotFoundAsync(context);
        }

        if (faults.GarbageMetrics)
        {
            return HttpResponses.SendAsync(context, StatusCodes.Status200OK, "text/html; charset=utf-8", GarbageMetrics);
        }

        return HttpResponses.SendAsync(context, StatusCodes.Status200OK, "text/plain; version=0.0.4; charset=utf-8", Encoding.UTF8.GetBytes(_metrics.Write()));
    }

    private Task ModelsAsync(HttpContext context)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            ModelListJson.Write(writer, _options.Model, _options.TimeProvider.GetUtcNow().ToUnixTimeSeconds(), _options.MaxModelLen, _options.LoraModules);
        }

        return HttpResponses.SendAsync(context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory);
    }
}
