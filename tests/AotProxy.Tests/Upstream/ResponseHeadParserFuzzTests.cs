using System.Buffers;
using System.Text;
using AotProxy.Tests.Support;
using AotProxy.Upstream;
using Xunit.Abstractions;

namespace AotProxy.Tests.Upstream;

// The response-head parser under the bounded mutation fuzzer (issue 14): seeds are the heads
// vLLM, nginx and OpenAI send (the captured OpenAI header block under an HTTP/1.1 status line),
// with bodies behind them. Its contract: a ParseStatus, never an exception; `consumed` inside
// the buffer, right after the head's blank line; every header range inside the head; the same
// result for any segmentation of the input, and Incomplete for every prefix that ends before
// the blank line.
public sealed class ResponseHeadParserFuzzTests(ITestOutputHelper output)
{
    private static readonly IReadOnlyList<byte[]> Seeds = BuildSeeds();

    [Fact]
    public void TryParse_FuzzedHeads_ReturnAStatusWithinTheContract()
    {
        var inputs = Fuzz.Run(Seeds, Check);

        output.WriteLine($"{inputs} inputs");

        Assert.True(inputs > Seeds.Count, $"only {inputs} inputs in the budget");
    }

    [Fact]
    public void TryParse_Seeds_AreCompleteHeads()
    {
        // The fuzzer starts from valid heads, not from garbage the parser refuses at once.
        foreach (var seed in Seeds)
        {
            Assert.Equal(ParseStatus.Complete, Parse(new ReadOnlySequence<byte>(seed)).Status);
        }
    }

    private static void Check(byte[] input)
    {
        var random = FuzzSplits.RandomFor(input);
        var whole = Parse(new ReadOnlySequence<byte>(input));
        var end = input.AsSpan().IndexOf("\r\n\r\n"u8);
        end = end < 0 ? -1 : end + 4;
        switch (whole.Status)
        {
            case ParseStatus.Incomplete:
                Assert.True(end < 0 && input.Length <= ResponseHead.MaxBytes, "Incomplete with a whole head in the buffer");
                Assert.Equal(0, whole.Consumed);
                break;
            case ParseStatus.Complete:
                Assert.Equal(end, whole.Consumed);
                Assert.InRange(whole.StatusCode, 100, 999);
                break;
            case ParseStatus.Invalid:
                break;
            default:
                Assert.Fail($"status {whole.Status}");
                break;
        }

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(whole, Parse(FuzzSplits.RandomSegments(input, random)));
        }

        foreach (var length in FuzzSplits.PrefixLengths(input.Length, random))
        {
            var prefix = Parse(new ReadOnlySequence<byte>(input, 0, length));
            if (end >= 0 && length >= end)
            {
                Assert.Equal(whole, prefix);
            }
            else
            {
                Assert.Equal(length > ResponseHead.MaxBytes ? ParseStatus.Invalid : ParseStatus.Incomplete, prefix.Status);
            }
        }
    }

    // Everything the parser decided, as a comparable value; the head's ranges are checked here.
    private static Result Parse(in ReadOnlySequence<byte> buffer)
    {
        var head = new ResponseHead();
        try
        {
            var status = ResponseHeadParser.TryParse(buffer, head, out var consumed);
            var offset = buffer.GetOffset(consumed);
            if (status != ParseStatus.Complete)
            {
                return new Result(status, offset, 0, "");
            }

            Assert.InRange(head.HeaderCount, 0, ResponseHead.MaxHeaders);
            Assert.Equal(offset - 2, head.Length);
            var headers = new StringBuilder();
            foreach (var header in head.Headers)
            {
                Assert.True(header.NameStart >= 0 && header.NameLength > 0 && header.NameStart + header.NameLength <= head.Length, "name range");
                Assert.True(header.ValueStart >= header.NameStart + header.NameLength && header.ValueLength >= 0 && header.ValueStart + header.ValueLength <= head.Length, "value range");
                headers.Append(Convert.ToHexString(head.Name(header))).Append('=').Append(Convert.ToHexString(head.Value(header))).Append(';');
            }

            headers.Append($"|{head.MinorVersion}|{head.ContentLength}|{head.Chunked}|{head.ConnectionClose}|{head.ConnectionOptions}|{head.IsEventStream}|{head.OtherTransferCoding}|{head.Framing}|{head.KeepAlive}");
            return new Result(status, offset, head.StatusCode, headers.ToString());
        }
        finally
        {
            head.Clear();
        }
    }

    private static List<byte[]> BuildSeeds()
    {
        var captured = Fixtures.Text("openai/openai_ref_response_headers.txt").ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var openAi = "HTTP/1.1 200 OK\r\n" + string.Concat(captured.Skip(1).Select(l => l + "\r\n")) + "Transfer-Encoding: chunked\r\n\r\n";
        var heads = new[]
        {
            "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 23:41:01 GMT\r\nContent-Type: application/json\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n\r\n",
            "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 23:41:01 GMT\r\nserver: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\nconnection: close, x-hop\r\nx-hop: 1\r\ncontent-length: 2\r\n\r\n",
            "HTTP/1.0 204 No Content\r\nX-Empty:\r\n\r\n",
            openAi,
        };
        var body = Fixtures.Bytes("openai/chat_stream_usage.sse");
        return [.. heads.Select(h => Encoding.ASCII.GetBytes(h).Concat(body.Take(200)).ToArray())];
    }

    private readonly record struct Result(ParseStatus Status, long Consumed, int StatusCode, string Headers);
}
