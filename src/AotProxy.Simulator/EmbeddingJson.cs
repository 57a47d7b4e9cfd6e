using System.Text.Json;

namespace AotProxy.Simulator;

// POST /v1/embeddings in vLLM's shape (fixtures/openai/embeddings.json).
internal static class EmbeddingJson
{
    // 384: small enough to keep bodies a few KB, the size of common sentence-embedding models.
    public const int Dimensions = 384;

    public static void WriteResponse(Utf8JsonWriter writer, string id, long created, string model, IReadOnlyList<ulong> inputHashes, int promptTokens)
    {
        writer.WriteStartObject();
        UsageJson.WriteHeader(writer, id, "list"u8, created, model);
        writer.WriteStartArray("data"u8);
        Span<double> vector = stackalloc double[Dimensions];
        for (var i = 0; i < inputHashes.Count; i++)
        {
            writer.WriteStartObject();
            writer.WriteNumber("index"u8, i);
            writer.WriteString("object"u8, "embedding"u8);
            writer.WriteStartArray("embedding"u8);
            Fill(vector, inputHashes[i]);
            foreach (var value in vector)
            {
                writer.WriteNumberValue(value);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        UsageJson.Write(writer, promptTokens, 0, withDetails: true);
        writer.WriteEndObject();
    }

    // A unit vector drawn from the input's hash, rounded to multiples of 1/4096 the way bf16 model
    // output is coarse; the rounding also keeps every number out of exponent notation.
    internal static void Fill(Span<double> vector, ulong seed)
    {
        var rng = new SplitMix64(seed);
        var norm = 0.0;
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = (rng.NextDouble() * 2) - 1;
            norm += vector[i] * vector[i];
        }

        norm = Math.Sqrt(norm);
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = Math.Round(vector[i] / norm * 4096) / 4096;
        }
    }
}
