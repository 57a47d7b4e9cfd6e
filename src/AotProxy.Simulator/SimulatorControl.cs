using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Simulator;

// GET /sim/stats, GET /sim/faults and POST /sim/faults: the same switches and counters as the
// SimulatorFaults and SimulatorStats objects, for a test that drives a separate process (the
// AOT binary running `aotproxy demo`). Not part of vLLM's API; never subject to faults.
internal sealed class SimulatorControl(SimulatorOptions options, SimulatorStats stats, ILogger logger)
{
    public Task GetStatsAsync(HttpContext context)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("name"u8, options.Name);
            writer.WriteString("model"u8, options.Model);
            writer.WriteNumber("requests_total"u8, stats.RequestsTotal);
            writer.WriteNumber("running"u8, stats.Running);
            writer.WriteNumber("waiting"u8, stats.Waiting);
            writer.WriteNumber("aborted"u8, stats.Aborted);
            writer.WriteNumber("completed"u8, stats.Completed);
            writer.WriteNumber("finished_stop"u8, stats.FinishedStop);
            writer.WriteNumber("finished_length"u8, stats.FinishedLength);
            writer.WriteNumber("resets"u8, stats.Resets);
            writer.WriteNumber("faults_injected"u8, stats.FaultsInjected);
            writer.WriteNumber("prompt_tokens"u8, stats.PromptTokens);
            writer.WriteNumber("generation_tokens"u8, stats.GenerationTokens);
            writer.WriteNumber("prefix_cache_queries"u8, stats.PrefixCacheQueries);
            writer.WriteNumber("prefix_cache_hits"u8, stats.PrefixCacheHits);
            writer.WriteNumber("preemptions"u8, stats.Preemptions);
            writer.WriteNumber("rate_limited"u8, stats.RateLimited);
            writer.WriteNumber("queue_full"u8, stats.QueueFull);
            writer.WriteNumber("lora_loads"u8, stats.LoraLoads);
            writer.WriteNumber("max_in_engine"u8, stats.MaxInEngine);
            writer.WriteNumber("used_blocks"u8, stats.UsedBlocks);
            writer.WriteNumber("kv_cache_usage"u8, stats.KvCacheUsage);
            writer.WriteEndObject();
        }

        return HttpResponses.SendAsync(context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory);
    }

    public Task GetFaultsAsync(HttpContext context) => SendFaultsAsync(context);

    // Fields absent from the body keep their value; "clear": true first turns every switch off.
    public async Task SetFaultsAsync(HttpContext context)
    {
        var reader = context.Request.BodyReader;
        var read = await HttpResponses.ReadBodyAsync(reader, context.RequestAborted).ConfigureAwait(false);
        if (read is not { } body)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status413PayloadTooLarge, "BadRequestError", "Request body too large.").ConfigureAwait(false);
            return;
        }

        string? error;
        try
        {
            error = Apply(body.Buffer, options.Faults);
        }
        finally
        {
            reader.AdvanceTo(body.Buffer.End);
        }

        if (error is not null)
        {
            await HttpResponses.SendErrorAsync(context, StatusCodes.Status400BadRequest, "BadRequestError", error).ConfigureAwait(false);
            return;
        }

        SimulatorLog.FaultsChanged(logger, context.Connection.RemoteIpAddress);
        await SendFaultsAsync(context).ConfigureAwait(false);
    }

    // Validates everything before changing anything, so a bad request leaves the switches as they were.
    internal static string? Apply(ReadOnlySequence<byte> json, SimulatorFaults faults)
    {
        var updates = new List<Action<SimulatorFaults>>();
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return "The body must be a JSON object.";
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString()!;
                reader.Read();
                switch (name)
                {
                    case "clear":
                        if (reader.GetBoolean())
                        {
                            updates.Insert(0, static f => f.Clear());
                        }

                        break;
                    case "http500_rate":
                        var rate = reader.GetDouble();
                        if (!(rate >= 0 && rate <= 1))
                        {
                            return "http500_rate must be between 0 and 1.";
                        }

                        updates.Add(f => f.Http500Rate = rate);
                        break;
                    case "hang":
                        var hang = reader.GetBoolean();
                        updates.Add(f => f.Hang = hang);
                        break;
                    case "reset_after_tokens":
                        var reset = reader.GetInt32();
                        updates.Add(f => f.ResetAfterTokens = reset);
                        break;
                    case "first_byte_delay_ms":
                        var firstByte = Milliseconds(ref reader);
                        updates.Add(f => f.FirstByteDelay = firstByte);
                        break;
                    case "inter_token_delay_ms":
                        var interToken = Milliseconds(ref reader);
                        updates.Add(f => f.InterTokenDelay = interToken);
                        break;
                    case "speed_factor":
                        var speed = reader.GetDouble();
                        if (!(speed > 0) || double.IsInfinity(speed))
                        {
                            return "speed_factor must be a positive number (0.2: every engine step 5x slower).";
                        }

                        updates.Add(f => f.SpeedFactor = speed);
                        break;
                    case "garbage_metrics":
                        var garbage = reader.GetBoolean();
                        updates.Add(f => f.GarbageMetrics = garbage);
                        break;
                    case "missing_metrics":
                        var missing = reader.GetBoolean();
                        updates.Add(f => f.MissingMetrics = missing);
                        break;
                    case "unhealthy_health":
                        var unhealthy = reader.GetBoolean();
                        updates.Add(f => f.UnhealthyHealth = unhealthy);
                        break;
                    default:
                        return $"Unknown fault '{name}'.";
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return $"Invalid fault JSON: {ex.Message}";
        }

        foreach (var update in updates)
        {
            update(faults);
        }

        return null;
    }

    private static TimeSpan Milliseconds(ref Utf8JsonReader reader)
    {
        var ms = reader.GetDouble();
        if (!(ms >= 0) || double.IsInfinity(ms))
        {
            throw new FormatException("Delays must be non-negative milliseconds.");
        }

        return TimeSpan.FromMilliseconds(ms);
    }

    private Task SendFaultsAsync(HttpContext context)
    {
        var faults = options.Faults;
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, HttpResponses.JsonOptions))
        {
            writer.WriteStartObject();
            writer.WriteNumber("http500_rate"u8, faults.Http500Rate);
            writer.WriteBoolean("hang"u8, faults.Hang);
            writer.WriteNumber("reset_after_tokens"u8, faults.ResetAfterTokens);
            writer.WriteNumber("first_byte_delay_ms"u8, faults.FirstByteDelay.TotalMilliseconds);
            writer.WriteNumber("inter_token_delay_ms"u8, faults.InterTokenDelay.TotalMilliseconds);
            writer.WriteNumber("speed_factor"u8, faults.SpeedFactor);
            writer.WriteBoolean("garbage_metrics"u8, faults.GarbageMetrics);
            writer.WriteBoolean("missing_metrics"u8, faults.MissingMetrics);
            writer.WriteBoolean("unhealthy_health"u8, faults.UnhealthyHealth);
            writer.WriteEndObject();
        }

        return HttpResponses.SendAsync(context, StatusCodes.Status200OK, HttpResponses.Json, buffer.WrittenMemory);
    }
}
