using System.Buffers;
using System.Text;
using AotProxy.Tests.Support;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

public sealed class ResponseHeadParserTests
{
    private const string NginxHead = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 23:41:01 GMT\r\nContent-Type: application/json\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n\r\n";
    private const string VllmStreamHead = "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 23:41:01 GMT\r\nserver: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n";

    [Fact]
    public void Parse_NginxHead_ReadsStatusLengthAndEveryHeader()
    {
        var head = Parse(NginxHead + "{\"body\":1}", out var bodyStart);

        Assert.Equal(200, head.StatusCode);
        Assert.Equal(1024, head.ContentLength);
        Assert.Equal(BodyFraming.ContentLength, head.Framing);
        Assert.True(head.KeepAlive);
        Assert.False(head.IsEventStream);
        Assert.Equal(NginxHead.Length, bodyStart);
        Assert.Equal(
            ["Server=nginx/1.22.1", "Date=Sun, 22 Nov 2026 23:41:01 GMT", "Content-Type=application/json", "Content-Length=1024", "Connection=keep-alive"],
            Headers(head));
    }

    [Fact]
    public void Parse_VllmStreamHead_IsChunkedEventStream()
    {
        var head = Parse(VllmStreamHead, out _);

        Assert.Equal(BodyFraming.Chunked, head.Framing);
        Assert.True(head.IsEventStream);
        Assert.True(head.KeepAlive);
        Assert.Equal(-1, head.ContentLength);
    }

    [Fact]
    public void Parse_OpenAiReferenceHeaders_KeepsAllTwentyOneInOrder()
    {
        // The fixture is an HTTP/2 capture; its header block is replayed under an HTTP/1.1 status line.
        var lines = Fixtures.Text("openai/openai_ref_response_headers.txt").ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var text = "HTTP/1.1 200 OK\r\n" + string.Concat(lines.Skip(1).Select(l => l + "\r\n")) + "Transfer-Encoding: chunked\r\n\r\n";

        var head = Parse(text, out _);

        Assert.True(head.IsEventStream);
        Assert.Equal(lines.Length, head.HeaderCount); // the 20 captured headers + Transfer-Encoding
        Assert.Equal(lines.Skip(1).Select(l => l.Replace(": ", "=", StringComparison.Ordinal)), Headers(head).Take(lines.Length - 1));
    }

    [Theory]
    [InlineData(NginxHead)]
    [InlineData(VllmStreamHead)]
    public void TryParse_EveryPrefix_WaitsForMore(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        for (var length = 0; length < bytes.Length; length++)
        {
            var status = ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(bytes, 0, length), new ResponseHead(), out _);
            Assert.True(status == ParseStatus.Incomplete, $"prefix of {length} bytes gave {status}");
        }
    }

    [Theory]
    [InlineData(NginxHead)]
    [InlineData(VllmStreamHead)]
    public void TryParse_EverySplitPoint_GivesTheOneSegmentResult(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text + "body");
        var expected = Headers(Parse(text + "body", out var expectedStart));
        for (var split = 0; split <= bytes.Length; split++)
        {
            var head = new ResponseHead();
            var buffer = Segments.Split(bytes, split);
            Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(buffer, head, out var consumed));
            Assert.Equal(expectedStart, buffer.Slice(0, consumed).Length);
            Assert.Equal(expected, Headers(head));
        }
    }

    [Theory]
    [InlineData("HTTP/1.1 204 No Content\r\n\r\n", "None", true)]
    [InlineData("HTTP/1.1 200 OK\r\n\r\n", "UntilClose", false)]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", "ContentLength", false)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n", "ContentLength", false)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n", "UntilClose", false)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Chunked", true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", "Chunked", false)]
    [InlineData("HTTP/1.1 200\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n", "ContentLength", true)]
    [InlineData("HTTP/1.1 500 Internal Server Error\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", "ContentLength", false)]
    public void Parse_Framing_FollowsRfc9112(string text, string framing, bool keepAlive)
    {
        var head = Parse(text, out _);

        Assert.Equal(framing, head.Framing.ToString());
        Assert.Equal(keepAlive, head.KeepAlive);
    }

    [Theory]
    [InlineData("HTTP/2 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 20 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 099 Low\r\n\r\n")]
    [InlineData("HTTP/1.1  200 OK\r\n\r\n")]
    [InlineData("http/1.1 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\nX: y\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX : a\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n")]
    public void TryParse_Malformed_IsInvalid(string text)
    {
        var status = ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text)), new ResponseHead(), out _);

        Assert.Equal(ParseStatus.Invalid, status);
    }

    [Fact]
    public void TryParse_HeadWithoutEnd_IsInvalidOnceOverTheLimit()
    {
        var endless = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nX: " + new string('a', ResponseHead.MaxBytes));

        Assert.Equal(ParseStatus.Incomplete, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(endless, 0, 1000), new ResponseHead(), out _));
        Assert.Equal(ParseStatus.Invalid, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(endless), new ResponseHead(), out _));
    }

    [Fact]
    public void TryParse_MoreHeadersThanTheLimit_IsInvalid()
    {
        var text = "HTTP/1.1 200 OK\r\n" + string.Concat(Enumerable.Range(0, ResponseHead.MaxHeaders + 1).Select(i => $"X-{i}: v\r\n")) + "\r\n";

        Assert.Equal(ParseStatus.Invalid, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(text)), new ResponseHead(), out _));
    }

    [Fact]
    public void Parse_ExactlyTheLimit_KeepsEveryHeaderInOrderPastTheFirstArray()
    {
        // 100 headers: the first array (16) grows four times; each value tells its place.
        var names = Enumerable.Range(0, ResponseHead.MaxHeaders).Select(i => $"X-{i}={i * 7}").ToArray();
        var text = "HTTP/1.1 200 OK\r\n" + string.Concat(names.Select(n => n.Replace("=", ": ", StringComparison.Ordinal) + "\r\n")) + "\r\n";

        var head = Parse(text, out _);

        Assert.True(ResponseHead.MaxHeaders > ResponseHead.InitialHeaders);
        Assert.Equal(ResponseHead.MaxHeaders, head.HeaderCount);
        Assert.Equal(names, Headers(head));
    }

    [Fact]
    public void Clear_AfterAHeadThatGrewTheArray_GoesBackToTheFirstArray_AndTheNextHeadParses()
    {
        var head = new ResponseHead();
        var many = "HTTP/1.1 200 OK\r\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"X-{i}: v\r\n")) + "\r\n";
        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(many)), head, out _));
        Assert.True(head.Capacity >= 40);

        head.Clear();

        Assert.Equal(0, head.Capacity); // every array went back to its pool (the grown one too)
        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(NginxHead)), head, out _));
        Assert.Equal(ResponseHead.InitialHeaders, head.Capacity);
        Assert.Equal(["Server=nginx/1.22.1", "Date=Sun, 22 Nov 2026 23:41:01 GMT", "Content-Type=application/json", "Content-Length=1024", "Connection=keep-alive"], Headers(head));
    }

    [Fact]
    public void TryParse_AnInterimHeadWithManyHeaders_ThenTheFinalHead_KeepsOnlyTheFinalHeaders()
    {
        // Load clears the head for each response of the read, the grown array of a 1xx included.
        var interim = "HTTP/1.1 103 Early Hints\r\n" + string.Concat(Enumerable.Range(0, 30).Select(i => $"Link: </{i}>\r\n")) + "\r\n";
        var bytes = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(interim + VllmStreamHead));
        var head = new ResponseHead();

        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(bytes, head, out var consumed));
        Assert.Equal(103, head.StatusCode);
        Assert.Equal(30, head.HeaderCount);
        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(bytes.Slice(consumed), head, out _));

        Assert.Equal(200, head.StatusCode);
        Assert.Equal(ResponseHead.InitialHeaders, head.Capacity);
        Assert.Equal(["date=Sun, 22 Nov 2026 23:41:01 GMT", "server=uvicorn", "content-type=text/event-stream; charset=utf-8", "transfer-encoding=chunked"], Headers(head));
    }

    // A stream's head went to the client with its first event: the copy goes back while the stream
    // runs on; what the end of the response needs (status, framing, keep-alive, event stream) stays.
    [Fact]
    public void ReleaseHeaders_GivesTheCopyAndAGrownArrayBack_AndKeepsTheStatusAndFraming()
    {
        var head = new ResponseHead();
        var many = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"X-{i}: v\r\n")) + "\r\n";
        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(many)), head, out _));
        Assert.Equal((true, 42), (head.Bytes.Length > 0, head.HeaderCount));

        head.ReleaseHeaders();

        Assert.Equal((0, 0, 0), (head.Bytes.Length, head.HeaderCount, head.Capacity));
        Assert.Equal((200, BodyFraming.Chunked, true, true), (head.StatusCode, head.Framing, head.KeepAlive, head.IsEventStream));
        head.Clear(); // after a release too: the next response parses into the same head
        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(NginxHead)), head, out _));
        Assert.Equal(["Server=nginx/1.22.1", "Date=Sun, 22 Nov 2026 23:41:01 GMT", "Content-Type=application/json", "Content-Length=1024", "Connection=keep-alive"], Headers(head));
    }

    private static ResponseHead Parse(string text, out long bodyStart)
    {
        var head = new ResponseHead();
        var buffer = new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text));
        Assert.Equal(ParseStatus.Complete, ResponseHeadParser.TryParse(buffer, head, out var consumed));
        bodyStart = buffer.Slice(0, consumed).Length;
        return head;
    }

    private static string[] Headers(ResponseHead head)
    {
        var result = new string[head.HeaderCount];
        for (var i = 0; i < result.Length; i++)
        {
            var header = head.Headers[i];
            result[i] = Encoding.Latin1.GetString(head.Name(header)) + "=" + Encoding.Latin1.GetString(head.Value(header));
        }

        return result;
    }
}
