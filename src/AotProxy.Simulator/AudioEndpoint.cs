using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Simulator;

// POST /v1/audio/transcriptions and /v1/audio/translations as vLLM serves a Whisper model: a
// multipart form (read by ASP.NET Core's own form reader, not the gateway's scanner), the audio's
// length from its WAV header, a sequence through the engine, and vLLM's answer: JSON with
// `usage: {"type":"duration","seconds":N}` (transcriptions only), verbose_json without usage, or
// an SSE stream of transcription.chunk objects with a usage chunk when stream_include_usage is on.
internal sealed class AudioEndpoint(SimulatorOptions options, SimulatorEngine engine, SimulatorStats stats)
{
    // Whisper's decoder prompt: <|startoftranscript|><|lang|><|task|><|notimestamps|>.
    public const int DecoderPromptTokens = 4;

    // Audio tokens per second, as a model's get_num_audio_tokens reports them into a stream's
    // prompt_tokens (Whisper's encoder: 1,500 positions per 30 s).
    public const int AudioTokensPerSecond = 50;

    // Spoken words per second: about 2.5 in speech; 3 tokens with punctuation.
    public const int TokensPerSecond = 3;

    public async Task HandleAsync(HttpContext context, bool translate)
    {
        stats.AddRequest();
        var ct = context.RequestAborted;
        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidDataException or InvalidOperationException or IOException)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", $"There was an error parsing the body: {ex.Message}").ConfigureAwait(false);
            return;
        }

        var model = form["model"].ToString();
        if (model.Length > 0 && model != options.Model && options.LoraModules.IndexOf(model) < 0)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status404NotFound, "NotFoundError", $"The model `{model}` does not exist.", "model").ConfigureAwait(false);
            return;
        }

        var file = form.Files.GetFile("file");
        var format = form["response_format"].ToString() is { Length: > 0 } named ? named : "json";
        var stream = Bool(form["stream"]);
        if (file is null)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", "Field required: file", "file").ConfigureAwait(false);
            return;
        }

        if (format is not ("json" or "text" or "verbose_json"))
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", "Currently only support response_format: `text`, `json` or `verbose_json`").ConfigureAwait(false);
            return;
        }

        if (format == "verbose_json" && stream)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", "verbose_json format doesn't support streaming case").ConfigureAwait(false);
            return;
        }

        var bytes = new byte[file.Length];
        var upload = file.OpenReadStream();
        await using (upload.ConfigureAwait(false))
        {
            await upload.ReadExactlyAsync(bytes, ct).ConfigureAwait(false);
        }

        if (AudioClip.Seconds(bytes) is not { } duration)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", "Invalid or unsupported audio file.").ConfigureAwait(false);
            return;
        }

        var planned = (int)Math.Max(2, Math.Ceiling(duration * TokensPerSecond));
        if (int.TryParse(form["max_completion_tokens"].ToString(), out var cap) && cap > 0)
        {
            planned = Math.Min(planned, cap);
        }

        var request = new ParsedRequest
        {
            Kind = RequestKind.Completion,
            Model = model,
            PromptTokens = DecoderPromptTokens + (int)Math.Ceiling(duration * AudioTokensPerSecond),
            PromptHash = Fnv1a.Hash(bytes),
            Stream = stream,
            IncludeUsage = Bool(form["stream_include_usage"]),
        };
        if (!engine.TrySubmit(request, planned, out var sequence))
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "ServiceUnavailableError", "The server is overloaded: its waiting queue is full. Retry later.").ConfigureAwait(false);
            return;
        }

        try
        {
            var text = new GeneratedText(request.PromptHash, planned, ignoreEos: true);
            var id = (translate ? "translate-" : "transcribe-") + (context.Request.Headers["X-Request-Id"].ToString() is { Length: > 0 } given ? given : $"{Random.Shared.NextInt64():x16}");
            var created = options.TimeProvider.GetUtcNow().ToUnixTimeSeconds();
            if (stream)
            {
                await StreamAsync(context, sequence, text, id, translate, created, model.Length > 0 ? model : options.Model, request).ConfigureAwait(false);
            }
            else if (await FinishedAsync(sequence, ct).ConfigureAwait(false))
            {
                var content = new StringBuilder();
                for (var i = 0; i < planned; i++)
                {
                    content.Append(text.Next());
                }

                var buffer = new ArrayBufferWriter<byte>(256 + (content.Length * 2));
                using (var json = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
                {
                    if (format == "verbose_json")
                    {
                        AudioJson.WriteVerbose(json, content.ToString(), form["language"].ToString() is { Length: > 0 } language ? language : null, duration, 0.0);
                    }
                    else
                    {
                        AudioJson.WriteResponse(json, content.ToString(), translate, (long)Math.Ceiling(duration));
                    }
                }

                await HttpResponses.SendAsync(context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory).ConfigureAwait(false);
            }

            stats.AddFinished(FinishReason.Length);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException || ct.IsCancellationRequested)
        {
            stats.AddAborted();
        }
        finally
        {
            engine.Abort(sequence);
        }
    }

    private static async Task StreamAsync(HttpContext context, SimulatedSequence sequence, GeneratedText text, string id, bool translate, long created, string model, ParsedRequest request)
    {
        var ct = context.RequestAborted;
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        await response.StartAsync(ct).ConfigureAwait(false);
        var pipe = response.BodyWriter;
        using var json = new Utf8JsonWriter(pipe, HttpResponses.JsonOptions);
        var sent = 0;
        while (await sequence.Progress.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (sequence.Progress.TryRead(out var generated))
            {
                for (; sent < generated; sent++)
                {
                    Event(pipe, json, w => AudioJson.WriteChunk(w, id, translate, created, model, text.Next(), sent + 1 == text.PlannedTokens ? text.FinishReasonText : null));
                }
            }

            await pipe.FlushAsync(ct).ConfigureAwait(false);
        }

        if (request.IncludeUsage)
        {
            Event(pipe, json, w => AudioJson.WriteUsageChunk(w, id, translate, created, model, request.PromptTokens, text.PlannedTokens));
        }

        pipe.Write("data: [DONE]\n\n"u8);
        await pipe.FlushAsync(ct).ConfigureAwait(false);
    }

    private static void Event(System.IO.Pipelines.PipeWriter pipe, Utf8JsonWriter json, Action<Utf8JsonWriter> write)
    {
        pipe.Write("data: "u8);
        json.Reset();
        write(json);
        json.Flush();
        pipe.Write("\n\n"u8);
    }

    private static async Task<bool> FinishedAsync(SimulatedSequence sequence, CancellationToken ct)
    {
        while (await sequence.Progress.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (sequence.Progress.TryRead(out _))
            {
            }
        }

        return sequence.State == SequenceState.Finished;
    }

    // Pydantic's bool from a form field.
    private static bool Bool(Microsoft.Extensions.Primitives.StringValues value) =>
        value.ToString().ToLowerInvariant() is "true" or "1" or "yes" or "on" or "t" or "y";
}
