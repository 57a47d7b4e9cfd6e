using System.Text.Json;
using AotProxy.Configuration;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// GET /v1/models: the models the caller may use, merged across workers, in OpenAI's shape; and
// GET /v1/models/{id}: one of them, the same entry. A LoRA adapter keeps the root and parent its
// worker listed. `created` is the time of the answer, as vLLM writes it (its ModelCard's default).
// An alias ([[models]] targets) is listed beside the served models while some worker serves one
// of its targets, to the tenants it allows; a [[models]] tenants list hides a model from the others.
internal static class ModelListWriter
{
    public static Task WriteAsync(HttpContext context, WorkerSet workers, ModelCatalog catalog, TenantModel tenant, TimeProvider time)
    {
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var models = workers.Pools.Values.Where(p => catalog.Allows(tenant, p.Model)).OrderBy(p => p.Model, StringComparer.Ordinal);
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

            foreach (var alias in catalog.Aliases)
            {
                if (catalog.Allows(tenant, alias.Name) && alias.Targets.Any(workers.Pools.ContainsKey))
                {
                    WriteAlias(json, alias.Name, created);
                }
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    // A model no worker serves now, or one the caller may not use, is 404 model_not_found alike
    // (OpenAI's answer for a model the key cannot see): the allowlist is not revealed.
    public static Task WriteOneAsync(HttpContext context, WorkerSet workers, ModelCatalog catalog, TenantModel tenant, string id, TimeProvider time)
    {
        workers.Pools.TryGetValue(id, out var pool);
        var alias = pool is null ? catalog.Aliases.FirstOrDefault(a => a.Name == id && a.Targets.Any(workers.Pools.ContainsKey)) : null;
        if ((pool is null && alias is null) || !catalog.Allows(tenant, id))
        {
            return OpenAiError.ModelNotFound(context, id);
        }

        var response = context.Response;
        response.ContentType = "application/json";
        using (var json = new Utf8JsonWriter(response.BodyWriter))
        {
            var created = time.GetUtcNow().ToUnixTimeSeconds();
            if (pool is not null)
            {
                WriteEntry(json, pool, created);
            }
            else
            {
                WriteAlias(json, id, created);
            }
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }

    private static void WriteAlias(Utf8JsonWriter json, string name, long created)
    {
        json.WriteStartObject();
        json.WriteString("id"u8, name);
        json.WriteString("object"u8, "model"u8);
        json.WriteNumber("created"u8, created);
        json.WriteString("owned_by"u8, "aotproxy"u8);
        json.WriteEndObject();
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

        if (pool.ContextLength is > 0 and var length)
        {
            json.WriteNumber("max_model_len"u8, length);
        }

        json.WriteEndObject();
    }
}
