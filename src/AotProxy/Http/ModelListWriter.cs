using System.Text.Json;
using AotProxy.Configuration;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// GET /v1/models: the models the caller may use, merged across workers, in OpenAI's shape; and
// GET /v1/models/{id}: one of them, the same entry. A LoRA adapter keeps the root and parent its
// worker listed. `created` is the time of the answer, as vLLM writes it (its ModelCard's default).
internal static class ModelListWriter
{
    public static Task WriteAsync(HttpContext context, WorkerSet workers, TenantModel tenant, TimeProvider time)
    {
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var models = workers.Pools.Values.Where(p => tenant.AllowsModel(p.Model)).OrderBy(p => p.Model, StringComparer.Ordinal);
        var response = context.Response;
        response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            json.WriteStartObject();
            json.WriteString("object"u8, "list"u8);
            json.WriteStartArray("data"u8);
            foreach (var pool in models)
            {
                WriteEntry(json, pool, created);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    // A model no worker serves now, or one the caller may not use, is 404 model_not_found alike
    // (OpenAI's answer for a model the key cannot see): the allowlist is not revealed.
    public static Task WriteOneAsync(HttpContext context, WorkerSet workers, TenantModel tenant, string id, TimeProvider time)
    {
        if (!workers.Pools.TryGetValue(id, out var pool) || !tenant.AllowsModel(id))
        {
            return OpenAiError.ModelNotFound(context, id);
        }

        var response = context.Response;
        response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            WriteEntry(json, pool, time.GetUtcNow().ToUnixTimeSeconds());
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    private static void WriteEntry(Utf8JsonWriter json, WorkerPool pool, long created)
    {
        json.WriteStartObject();
        json.WriteString("id"u8, pool.Model);
        json.WriteString("object"u8, "model"u8);
        json.WriteNumber("created"u8, created);
        json.WriteString("owned_by"u8, "aotproxy"u8);
        if (pool.Adapter is { } adapter)
        {
            // As vLLM lists an adapter, so clients can tell it from a base model.
            json.WriteString("root"u8, adapter.Root ?? pool.Model);
            json.WriteString("parent"u8, adapter.Parent);
        }

        if (MaxModelLen(pool) is { } length)
        {
            json.WriteNumber("max_model_len"u8, length);
        }

        json.WriteEndObject();
    }

    // The smallest max_model_len the pool's workers listed (a prompt that fits it fits every one
    // of them); an adapter has its parent's. Null while no worker was asked (configured `models`
    // without adapters are never asked).
    private static int? MaxModelLen(WorkerPool pool)
    {
        var name = pool.Adapter?.Parent ?? pool.Model;
        int? smallest = null;
        foreach (var worker in pool.Workers)
        {
            foreach (var listed in worker.ListedModels)
            {
                if (listed.Id == name && listed.MaxModelLen is { } length && (smallest is null || length < smallest))
                {
                    smallest = length;
                }
            }
        }

        return smallest;
    }
}
