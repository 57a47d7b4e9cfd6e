using System.Text.Json;

namespace AotProxy.Simulator;

// /tokenize and /detokenize in vLLM's shapes (vllm/entrypoints/openai/protocol.py: TokenizeResponse
// count, max_model_len, tokens, token_strs; DetokenizeResponse prompt). The simulator's tokenizer
// is its rule of thumb: 4 bytes of text per token, so /tokenize's count is the prompt_tokens the
// same text costs in a completion.
internal static class TokenizerJson
{
    // A vocabulary of 32,000, as Llama 2's, for the ids made up from the text.
    private const int Vocabulary = 32000;

    public static void WriteTokenize(Utf8JsonWriter writer, ParsedRequest request, int maxModelLen)
    {
        writer.WriteStartObject();
        writer.WriteNumber("count"u8, request.PromptTokens);
        writer.WriteNumber("max_model_len"u8, maxModelLen);
        writer.WriteStartArray("tokens"u8);
        var rng = new SplitMix64(request.PromptHash);
        for (var i = 0; i < request.PromptTokens; i++)
        {
            writer.WriteNumberValue(rng.NextInt(Vocabulary));
        }

        writer.WriteEndArray();
        writer.WriteNull("token_strs"u8);
        writer.WriteEndObject();
    }

    // Each id stands for 4 letters, so the text tokenizes back to as many tokens.
    public static void WriteDetokenize(Utf8JsonWriter writer, IReadOnlyList<int> tokens)
    {
        var text = new char[tokens.Count * 4];
        for (var i = 0; i < tokens.Count; i++)
        {
            var rng = new SplitMix64((ulong)tokens[i]);
            for (var j = 0; j < 4; j++)
            {
                text[(i * 4) + j] = (char)('a' + rng.NextInt(26));
            }
        }

        writer.WriteStartObject();
        writer.WriteString("prompt"u8, text);
        writer.WriteEndObject();
    }
}
