using System.Text.Json;

namespace AotProxy.Simulator;

// The pooling models' answers in vLLM's shapes (vllm/entrypoints/openai/protocol.py: RerankResponse,
// ScoreResponse, PoolingResponse, ClassificationResponse). Each item's score, vector or class
// probabilities are drawn from its input's hash, so the same input always gets the same answer.
internal static class ScoringJson
{
    // A pooling answer's vector: short, its length is not what a test reads.
    public const int PoolingDimensions = 16;

    private static readonly string[] Labels = ["negative", "positive"];

    public static void Write(Utf8JsonWriter writer, RequestKind kind, string id, long created, string model, ParsedRequest request)
    {
        writer.WriteStartObject();
        if (kind == RequestKind.Rerank)
        {
            // RerankResponse: id, model, usage (prompt_tokens, total_tokens), results by descending score.
            writer.WriteString("id"u8, id);
            writer.WriteString("model"u8, model);
            writer.WriteStartObject("usage"u8);
            writer.WriteNumber("prompt_tokens"u8, request.PromptTokens);
            writer.WriteNumber("total_tokens"u8, request.PromptTokens);
            writer.WriteEndObject();
            WriteRerankResults(writer, request);
            writer.WriteEndObject();
            return;
        }

        UsageJson.WriteHeader(writer, id, "list"u8, created, model);
        writer.WriteStartArray("data"u8);
        Span<double> vector = stackalloc double[PoolingDimensions];
        for (var i = 0; i < request.InputHashes.Count; i++)
        {
            var rng = new SplitMix64(request.InputHashes[i]);
            writer.WriteStartObject();
            writer.WriteNumber("index"u8, i);
            switch (kind)
            {
                case RequestKind.Score:
                    writer.WriteString("object"u8, "score"u8);
                    writer.WriteNumber("score"u8, Round(rng.NextDouble()));
                    break;
                case RequestKind.Classify:
                    var positive = Round(rng.NextDouble());
                    writer.WriteString("label"u8, Labels[positive >= 0.5 ? 1 : 0]);
                    writer.WriteStartArray("probs"u8);
                    writer.WriteNumberValue(1 - positive);
                    writer.WriteNumberValue(positive);
                    writer.WriteEndArray();
                    writer.WriteNumber("num_classes"u8, Labels.Length);
                    break;
                default:
                    writer.WriteString("object"u8, "pooling"u8);
                    writer.WriteStartArray("data"u8);
                    EmbeddingJson.Fill(vector, request.InputHashes[i]);
                    foreach (var value in vector)
                    {
                        writer.WriteNumberValue(value);
                    }

                    writer.WriteEndArray();
                    break;
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        UsageJson.Write(writer, request.PromptTokens, 0, withDetails: true);
        writer.WriteEndObject();
    }

    private static void WriteRerankResults(Utf8JsonWriter writer, ParsedRequest request)
    {
        var count = request.InputHashes.Count;
        var order = new (double Score, int Index)[count];
        for (var i = 0; i < count; i++)
        {
            order[i] = (Round(new SplitMix64(request.InputHashes[i]).NextDouble()), i);
        }

        Array.Sort(order, static (a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : a.Index.CompareTo(b.Index));
        var top = request.TopN is > 0 and var n ? Math.Min(n, count) : count;
        writer.WriteStartArray("results"u8);
        for (var i = 0; i < top; i++)
        {
            writer.WriteStartObject();
            writer.WriteNumber("index"u8, order[i].Index);
            writer.WriteStartObject("document"u8);
            writer.WriteString("text"u8, request.Documents[order[i].Index]);
            writer.WriteEndObject();
            writer.WriteNumber("relevance_score"u8, order[i].Score);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    // Multiples of 1/4096, as in EmbeddingJson: no exponent notation in the numbers.
    private static double Round(double value) => Math.Round(value * 4096) / 4096;
}
