using System.Text;
using AotProxy.Load.Http;

namespace AotProxy.Load.Tests.Http;

public sealed class ResponseScannerTests
{
    // (fixture, data events without [DONE], events with text, prompt tokens, completion tokens)
    public static TheoryData<string, int, int, long, long> Streams() => new()
    {
        { "openai/chat_stream_usage.sse", 5, 2, 13, 3 },
        { "openai/openai_ref_chat_stream_usage.sse", 3, 0, 12, 100 },
        { "openai/chat_stream.sse", 6, 4, -1, -1 },
    };

    [Theory]
    [MemberData(nameof(Streams))]
    public void A_real_stream_split_at_every_byte_reads_the_same(string fixture, int dataEvents, int contentEvents, long prompt, long completion)
    {
        var bytes = Fixtures.Bytes(fixture);
        var whole = Scan(bytes, [bytes.Length]);
        Assert.Equal(dataEvents, whole.DataEvents);
        Assert.True(whole.SawDone);
        if (contentEvents >= 0)
        {
            Assert.Equal(contentEvents, whole.ContentEvents);
        }

        if (prompt >= 0)
        {
            Assert.True(whole.HasUsage);
            Assert.Equal((prompt, completion), (whole.PromptTokens, whole.CompletionTokens));
        }

        for (var split = 1; split < bytes.Length; split++)
        {
            var parts = Scan(bytes, [split, bytes.Length - split]);
            Assert.Equal(Summary(whole), Summary(parts));
        }

        Assert.Equal(Summary(whole), Summary(Scan(bytes, Enumerable.Repeat(1, bytes.Length).ToArray())));
    }

    [Theory]
    [MemberData(nameof(Streams))]
    public void Crlf_line_endings_read_the_same(string fixture, int dataEvents, int contentEvents, long prompt, long completion)
    {
        _ = (contentEvents, prompt, completion);
        var lf = Fixtures.Bytes(fixture);
        var crlf = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(lf).Replace("\n", "\r\n", StringComparison.Ordinal));
        var scanned = Scan(crlf, Enumerable.Repeat(7, (crlf.Length / 7) + 1).ToArray());
        Assert.Equal(dataEvents, scanned.DataEvents);
        Assert.Equal(Summary(Scan(lf, [lf.Length])), Summary(scanned));
    }

    [Fact]
    public void Events_are_counted_only_when_their_blank_line_arrives()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream_usage.sse");
        var firstEventEnd = Encoding.UTF8.GetString(bytes).IndexOf("\n\n", StringComparison.Ordinal) + 2;
        using var scanner = new ResponseScanner(stream: true);
        for (var i = 0; i < firstEventEnd - 1; i++)
        {
            Assert.Equal(default, scanner.Feed(bytes.AsSpan(i, 1)));
        }

        Assert.Equal(new SseBatch(1, 0), scanner.Feed(bytes.AsSpan(firstEventEnd - 1, 1)));
        Assert.Equal(new SseBatch(4, 2), scanner.Feed(bytes.AsSpan(firstEventEnd)));
        Assert.True(scanner.SawDone);
    }

    [Fact]
    public void A_stream_cut_before_done_is_not_done()
    {
        var text = Fixtures.Text("openai/chat_stream_usage.sse");
        var cut = Encoding.UTF8.GetBytes(text[..text.IndexOf("data: [DONE]", StringComparison.Ordinal)]);
        var scanned = Scan(cut, [cut.Length]);
        Assert.False(scanned.SawDone);
        Assert.Equal(5, scanned.DataEvents);
    }

    [Fact]
    public void Comments_and_other_fields_are_not_events_with_data()
    {
        var scanned = Scan(": keep-alive\n\nevent: ping\n\ndata: {\"choices\":[{\"text\":\"hi\"}]}\n\ndata: [DONE]\n\n"u8.ToArray(), [5, 100]);
        Assert.Equal((1, 1, true), (scanned.DataEvents, scanned.ContentEvents, scanned.SawDone));
    }

    [Fact]
    public void A_long_event_grows_the_buffer()
    {
        var content = new string('x', 100_000);
        var bytes = Encoding.UTF8.GetBytes($"data: {{\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\ndata: [DONE]\n\n");
        var scanned = Scan(bytes, [3000, 3000, bytes.Length]);
        Assert.Equal((1, 1, true), (scanned.DataEvents, scanned.ContentEvents, scanned.SawDone));
    }

    [Theory]
    [InlineData("openai/chat_nonstream.json")]
    [InlineData("openai/completions.json")]
    public void A_json_body_reads_its_usage_at_the_end(string fixture)
    {
        var bytes = Fixtures.Bytes(fixture);
        using var scanner = new ResponseScanner(stream: false);
        for (var at = 0; at < bytes.Length; at += 100)
        {
            Assert.Equal(default, scanner.Feed(bytes.AsSpan(at, Math.Min(100, bytes.Length - at))));
        }

        scanner.Complete();
        Assert.True(scanner.HasUsage);
        var json = System.Text.Json.JsonDocument.Parse(bytes).RootElement.GetProperty("usage");
        Assert.Equal(json.GetProperty("prompt_tokens").GetInt64(), scanner.PromptTokens);
        Assert.Equal(json.GetProperty("completion_tokens").GetInt64(), scanner.CompletionTokens);
    }

    [Fact]
    public void The_answer_of_a_real_stream_is_its_content_joined_at_every_split()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        for (var split = 1; split < bytes.Length; split += 7)
        {
            var answer = new StringBuilder();
            using var scanner = new ResponseScanner(stream: true, answer);
            scanner.Feed(bytes.AsSpan(0, split));
            scanner.Feed(bytes.AsSpan(split));
            Assert.Equal("Okay. Sure.", answer.ToString());
        }
    }

    [Fact]
    public void The_answer_keeps_escapes_and_leaves_reasoning_out()
    {
        var answer = new StringBuilder();
        using var scanner = new ResponseScanner(stream: true, answer);
        string[] events =
        [
            """data: {"choices":[{"delta":{"reasoning_content":"thinking"}}]}""",
            """data: {"choices":[{"delta":{"content":"say \"hi\"\n\u00e9"}}]}""",
            """data: {"choices":[{"text":" and more"}]}""",
            "data: [DONE]",
        ];
        scanner.Feed(Encoding.UTF8.GetBytes(string.Join("\n\n", events) + "\n\n"));
        Assert.Equal("say \"hi\"\né and more", answer.ToString());
    }

    [Fact]
    public void The_answer_of_a_json_body_is_its_message()
    {
        var answer = new StringBuilder();
        using var scanner = new ResponseScanner(stream: false, answer);
        scanner.Feed(Fixtures.Bytes("openai/chat_nonstream.json"));
        scanner.Complete();
        var expected = System.Text.Json.JsonDocument.Parse(Fixtures.Bytes("openai/chat_nonstream.json")).RootElement
            .GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.False(string.IsNullOrEmpty(expected));
        Assert.Equal(expected, answer.ToString());
    }

    [Fact]
    public void Reading_the_answer_leaves_the_counts_as_they_were()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream_usage.sse");
        var answer = new StringBuilder();
        using var with = new ResponseScanner(stream: true, answer);
        with.Feed(bytes);
        Assert.Equal(Summary(Scan(bytes, [bytes.Length])), Summary(with));
        Assert.NotEqual(0, answer.Length);
    }

    private static (int, int, bool, bool, long, long) Summary(ResponseScanner s) =>
        (s.DataEvents, s.ContentEvents, s.SawDone, s.HasUsage, s.PromptTokens, s.CompletionTokens);

    // Feeds bytes in pieces of the given sizes (the last piece takes what is left).
    private static ResponseScanner Scan(byte[] bytes, int[] pieces)
    {
        var scanner = new ResponseScanner(stream: true);
        var at = 0;
        foreach (var size in pieces)
        {
            var n = Math.Min(size, bytes.Length - at);
            scanner.Feed(bytes.AsSpan(at, n));
            at += n;
        }

        Assert.Equal(bytes.Length, at);
        return scanner;
    }
}
