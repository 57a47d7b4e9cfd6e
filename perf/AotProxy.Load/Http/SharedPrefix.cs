using System.Globalization;
using System.Text;

namespace AotProxy.Load.Http;

// The long system messages of shared-prefix traffic: N fixed texts, the same in every run and
// process. They differ from their very first character (for N <= 16; within the first 4 for
// N <= 65,536), so that a gateway that hashes only the start of the prompt still tells them apart,
// and the rest is word salad seeded by the prefix's number, so they do not share later blocks either.
internal static class SharedPrefix
{
    private static readonly string[] Words =
    [
        "You", "are", "a", "careful", "assistant", "for", "the", "billing", "team", "answer", "only", "from",
        "policy", "documents", "below", "cite", "section", "numbers", "never", "invent", "refunds", "escalate",
        "disputes", "over", "limit", "customer", "account", "invoice", "tax", "region", "currency", "contract",
    ];

    public static string Text(int prefix, int chars)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(prefix);
        var text = new StringBuilder(chars + 16);

        // The prefix number in hex, least significant digit first: prefixes 0..15 differ in the
        // very first character.
        for (int i = 0, n = prefix; i < 4 || n > 0; i++, n >>= 4)
        {
            text.Append("0123456789abcdef"[n & 0xF]);
        }

        text.Append(CultureInfo.InvariantCulture, $" system prompt {prefix}:");
        var state = SplitMix64.Mix((ulong)prefix);
        while (text.Length < chars)
        {
            state = SplitMix64.Mix(state);
            text.Append(' ').Append(Words[(int)(state % (ulong)Words.Length)]);
        }

        return text.ToString(0, chars);
    }
}
