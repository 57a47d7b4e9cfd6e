using System.Text;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

// The prompt's chained 256-byte chunk hashes, as the inspector writes them in its one pass.
public class PromptChunksTests
{
    private static readonly string SystemPrompt = string.Concat(Enumerable.Range(0, 60).Select(i => $"Rule {i}: answer briefly and cite the manual. "));

    [Fact]
    public void Inspect_AGrownConversation_MatchesItsEarlierTurnsChunks()
    {
        var turn1 = $$"""[{"role":"system","content":"{{SystemPrompt}}"},{"role":"user","content":"How do I reset the router?"}]""";
        var turn2 = turn1[..^1] + """,{"role":"assistant","content":"Hold the button for ten seconds."},{"role":"user","content":"And then?"}]""";

        var first = Chunks($$"""{"model":"m","messages":{{turn1}}}""");
        var second = Chunks($$"""{"model":"m","messages":{{turn2}},"stream":true}""");

        // Every chunk before turn 1's closing bracket is the same bytes in turn 2.
        var shared = (turn1.Length - 1) / PromptChunks.Bytes;
        Assert.True(shared >= 10, $"{shared}");
        Assert.True(second.Length > first.Length);
        Assert.Equal(first[..shared], second[..shared]);
        Assert.Equal(shared, MatchingPrefix(first, second));
    }

    [Fact]
    public void Inspect_TwoPromptsSharingThreeOfFiveChunks_MatchThree()
    {
        var text = new string('a', (5 * PromptChunks.Bytes) - 2); // with its quotes, the raw value is 5 whole chunks
        var other = text[..((3 * PromptChunks.Bytes) + 10)] + "B" + text[((3 * PromptChunks.Bytes) + 11)..];

        var first = Chunks($$"""{"model":"m","prompt":"{{text}}"}""");
        var second = Chunks($$"""{"prompt":"{{other}}","model":"m"}""");

        Assert.Equal(5, first.Length);
        Assert.Equal(5, second.Length);
        Assert.Equal(3, MatchingPrefix(first, second));
    }

    [Fact]
    public void Inspect_OneByteChangedInChunkZero_MatchesNothing()
    {
        var text = new string('a', 2000);
        var first = Chunks($$"""{"model":"m","input":"{{text}}"}""");
        var second = Chunks($$"""{"model":"m","input":"b{{text[1..]}}"}""");

        Assert.Equal(7, first.Length);
        Assert.Equal(0, MatchingPrefix(first, second));
        Assert.Empty(first.Intersect(second)); // chained: no later chunk matches either
    }

    [Theory]
    [InlineData("""{"model":"m"}""")]                        // no prompt
    [InlineData("""{"model":"m","messages":"LONG"}""")]      // messages that are not an array
    [InlineData("""{"model":"m","prompt":{"text":"LONG"}}""")] // a prompt that is not a string or an array
    [InlineData("""{"model":"m","messages":[{"content":"LONG"}]""")] // not valid JSON: no request at all
    [InlineData("""{"model":"m","prompt":"short"}""")]       // shorter than one chunk
    public void Inspect_AbsentOrMalformedPrompt_GivesNoChunks(string body)
    {
        var buffer = new ulong[PromptChunks.Max];
        RequestInspector.Inspect(Encoding.UTF8.GetBytes(body.Replace("LONG", new string('x', 3000))), buffer, out var request, out _);

        Assert.Equal(0, request.PromptChunks);
    }

    [Fact]
    public void Inspect_APromptOver64KiB_ModelsItsFirst256Chunks_AndWithoutABufferNone()
    {
        var body = Encoding.UTF8.GetBytes($$"""{"model":"m","prompt":"{{new string('a', 100_000)}}"}""");
        var buffer = new ulong[PromptChunks.Max];

        Assert.Equal(InspectionError.None, RequestInspector.Inspect(body, buffer, out var request, out _));
        Assert.Equal(PromptChunks.Max, request.PromptChunks);
        Assert.DoesNotContain(0UL, buffer);

        RequestInspector.Inspect(body, out var unbuffered, out _);
        Assert.Equal(0, unbuffered.PromptChunks);
        Assert.Equal(request.PrefixHash, unbuffered.PrefixHash);
    }

    // cache_salt: a salted tenant's chunks match none of another tenant's or an unsalted one's,
    // but its own again; the prefix hash (consistent_hash's key) is salted too.
    [Fact]
    public void Inspect_Salted_ChunksAndPrefixMatchOnlyTheSameSalt()
    {
        var json = $$"""{"model":"m","messages":[{"role":"system","content":"{{SystemPrompt}}"}]}""";
        var red = new AotProxy.Configuration.TenantCacheSalt("red").Seed;
        var blue = new AotProxy.Configuration.TenantCacheSalt("blue").Seed;

        var plain = Chunks(json, out var plainPrefix);
        var redChunks = Chunks(json, out var redPrefix, red);
        var redAgain = Chunks(json, out var redPrefixAgain, red);
        var blueChunks = Chunks(json, out var bluePrefix, blue);

        Assert.True(plain.Length >= 10, $"{plain.Length}");
        Assert.Equal(redChunks, redAgain);
        Assert.Equal(redPrefix, redPrefixAgain);
        Assert.Equal(0, MatchingPrefix(plain, redChunks));
        Assert.Equal(0, MatchingPrefix(redChunks, blueChunks));
        Assert.Empty(redChunks.Intersect(blueChunks).Concat(redChunks.Intersect(plain)));
        Assert.Equal(3, new[] { plainPrefix, redPrefix, bluePrefix }.Distinct().Count());
        Assert.DoesNotContain(0UL, new[] { plainPrefix, redPrefix, bluePrefix });
    }

    private static ulong[] Chunks(string json) => Chunks(json, out _);

    [Fact]
    public void Rent_ABodyShorterThanAChunk_RentsNothing()
    {
        Assert.Empty(PromptChunks.Rent(0));
        Assert.Empty(PromptChunks.Rent(PromptChunks.Bytes - 1));
        PromptChunks.Return([]); // nothing to give back, and no error
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(PromptChunks.Max)]
    [InlineData(PromptChunks.Max + 3)]
    public void Rent_ForTheBody_HoldsEveryChunkItsPromptHas(int promptChunks)
    {
        // The tightest body: the prompt's raw value (quotes included) is whole chunks, the envelope a few bytes.
        var json = $$"""{"model":"m","prompt":"{{new string('p', (promptChunks * PromptChunks.Bytes) - 2)}}"}""";
        var body = Encoding.UTF8.GetBytes(json);
        var full = new ulong[PromptChunks.Max];
        Assert.Equal(InspectionError.None, RequestInspector.Inspect(body, full, out var expected, out _));

        var rented = PromptChunks.Rent(body.Length);
        try
        {
            Assert.Equal(InspectionError.None, RequestInspector.Inspect(body, rented, out var request, out _));

            Assert.Equal(Math.Min(promptChunks, PromptChunks.Max), request.PromptChunks);
            Assert.Equal(expected.PromptChunks, request.PromptChunks);
            Assert.Equal(full[..expected.PromptChunks], rented[..request.PromptChunks]);
        }
        finally
        {
            PromptChunks.Return(rented);
        }
    }

    private static ulong[] Chunks(string json, out ulong prefixHash, ulong salt = 0)
    {
        // The buffer the gateway rents for this body (InspectionStage), not a fixed Max.
        var body = Encoding.UTF8.GetBytes(json);
        var buffer = PromptChunks.Rent(body.Length);
        try
        {
            Assert.Equal(InspectionError.None, RequestInspector.Inspect(body, buffer, out var request, out _, salt));
            prefixHash = request.PrefixHash;
            return buffer[..request.PromptChunks];
        }
        finally
        {
            PromptChunks.Return(buffer);
        }
    }

    private static int MatchingPrefix(ulong[] a, ulong[] b)
    {
        var n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n])
        {
            n++;
        }

        return n;
    }
}
