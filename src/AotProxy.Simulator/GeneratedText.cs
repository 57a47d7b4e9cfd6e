namespace AotProxy.Simulator;

// The "model output" for one request: a fixed plan (how many tokens, why it ends) and the token
// texts, all drawn from a PRNG seeded by the request, so the same request yields the same bytes.
// One token is one word or punctuation mark, with its leading space, as BPE vocabularies have it.
// On "stop" the last token is the end-of-sequence token, whose text is empty: vLLM streams it as
// the final chunk with "content":"" and counts it in completion_tokens.
internal sealed class GeneratedText
{
    // Half the requests end on their own, so both finish reasons show up in any sizeable run.
    private const double StopProbability = 0.5;

    private static readonly string[] Words =
    [
        "the", "model", "a", "token", "of", "to", "and", "in", "is", "that", "for", "it", "as", "with",
        "on", "this", "be", "are", "by", "an", "can", "each", "from", "at", "which", "or", "more", "it",
        "request", "batch", "cache", "prefix", "memory", "block", "sequence", "latency", "throughput",
        "server", "worker", "queue", "decode", "prefill", "attention", "layer", "weights", "context",
        "answer", "question", "example", "language", "large", "small", "fast", "slow", "simple", "first",
        "next", "last", "time", "data", "text", "word", "result", "value", "system", "user", "input",
        "output", "process", "step", "state", "number", "order", "way", "part", "point", "case", "form",
        "will", "would", "should", "could", "may", "must", "also", "only", "then", "when", "where", "how",
        "what", "why", "not", "all", "some", "many", "most", "other", "such", "same", "new", "good",
        "important", "different", "possible", "available", "usually", "often", "because", "while",
        "between", "through", "during", "before", "after", "into", "over", "under", "about", "without",
        "uses", "keeps", "makes", "takes", "gives", "shows", "means", "needs", "helps", "runs", "reads",
        "writes", "sends", "holds", "grows", "falls", "stays", "works", "learns", "predicts", "generates",
    ];

    private static readonly string[] SpacedWords = Array.ConvertAll(Words, static w => " " + w);
    private static readonly string[] CapitalWords = Array.ConvertAll(Words, static w => char.ToUpperInvariant(w[0]) + w[1..]);
    private static readonly string[] SpacedCapitalWords = Array.ConvertAll(CapitalWords, static w => " " + w);

    private SplitMix64 _rng;
    private int _emitted;
    private bool _sentenceStart;
    private bool _lineStart;

    // continuation: the text carries on a prompt (completions), so it opens with a spaced word
    // (" there") instead of a capitalised one, like a real model continuing a sentence.
    public GeneratedText(ulong seed, int maxTokens, bool ignoreEos, bool continuation = false)
    {
        _rng = new SplitMix64(seed);
        _lineStart = !continuation;
        _sentenceStart = !continuation;
        if (!ignoreEos && maxTokens >= 3 && _rng.NextDouble() < StopProbability)
        {
            // Between a quarter of max_tokens and one short of it, end-of-sequence included, and
            // at least one word before it.
            var shortest = Math.Max(2, maxTokens / 4);
            PlannedTokens = shortest + _rng.NextInt(maxTokens - shortest);
            FinishReason = FinishReason.Stop;
        }
        else
        {
            PlannedTokens = maxTokens;
            FinishReason = FinishReason.Length;
        }
    }

    public int PlannedTokens { get; }

    public FinishReason FinishReason { get; }

    public string FinishReasonText => FinishReason == FinishReason.Stop ? "stop" : "length";

    // Token texts in order; call PlannedTokens times.
    public string Next()
    {
        var index = _emitted++;
        if (FinishReason == FinishReason.Stop && index == PlannedTokens - 1)
        {
            return string.Empty;
        }

        if (_sentenceStart)
        {
            _sentenceStart = false;
            var word = _rng.NextInt(Words.Length);
            var text = _lineStart ? CapitalWords[word] : SpacedCapitalWords[word];
            _lineStart = false;
            return text;
        }

        var roll = _rng.NextDouble();
        if (roll < 0.10)
        {
            _sentenceStart = true;
            return ".";
        }

        if (roll < 0.13)
        {
            _sentenceStart = true;
            _lineStart = true;
            return ".\n\n";
        }

        if (roll < 0.20)
        {
            return ",";
        }

        return SpacedWords[_rng.NextInt(Words.Length)];
    }
}
