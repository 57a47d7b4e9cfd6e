using System.Text.Json;
using AotProxy.Configuration;
using AotProxy.Routing;
using Microsoft.AspNetCore.Http;

namespace AotProxy.Http;

// GET /v1/models: the models the caller may use, merged across workers, in OpenAI's shape.
// A LoRA adapter keeps the root and parent its worker listed.
// `created` is the time of the answer, as vLLM writes it (its ModelCard's default).
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

                json.WriteEndObject();
            }

            foreach (var alias in catalog.Aliases)
            {
                if (catalog.Allows(tenant, alias.Name) && alias.Targets.Any(workers.Pools.ContainsKey))
                {
                    json.WriteStartObject();
                    json.WriteString("id"u8, alias.Name);
                    json.WriteString("object"u8, "model"u8);
                    json.WriteNumber("created"u8, created);
                    json.WriteString("owned_by"u8, "aotproxy"u8);
                    json.WriteEndObject();
                }
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return response.BodyWriter.FlushAsync(context.RequestAborted).AsTask();
    }
}
