using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using AotProxy.Upstream;

namespace AotProxy.Tests.Upstream;

public sealed class BodyReaderTests
{
    [Fact]
    public async Task ContentLength_StopsAtTheBodysEnd_AndLeavesWhatFollows()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("hello worldHTTP/1.1 next"u8.ToArray());
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.ContentLength, 11);

        Assert.Equal("hello world", await ReadAllAsync(body));
        Assert.True(body.IsComplete);
        Assert.True(pipe.Reader.TryRead(out var rest));
        Assert.Equal("HTTP/1.1 next", Encoding.ASCII.GetString(rest.Buffer.ToArray()));
    }

    [Fact]
    public async Task ContentLength_ArrivingInPieces_IsReadWhole()
    {
        var pipe = new Pipe();
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.ContentLength, 10);
        var reading = ReadAllAsync(body);
        foreach (var piece in new[] { "abc", "defg", "hij" })
        {
            await pipe.Writer.WriteAsync(Encoding.ASCII.GetBytes(piece));
            await Task.Delay(5);
        }

        Assert.Equal("abcdefghij", await reading);
        Assert.True(body.IsComplete);
    }

    [Fact]
    public async Task ContentLength_ClosedEarly_Throws()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("short"u8.ToArray());
        await pipe.Writer.CompleteAsync();
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.ContentLength, 100);

        await Assert.ThrowsAsync<IOException>(() => ReadAllAsync(body));
        Assert.False(body.IsComplete);
    }

    [Fact]
    public async Task Chunked_EveryWriteSplit_GivesTheData()
    {
        var wire = Encoding.ASCII.GetBytes("5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nNEXT");
        for (var split = 1; split < wire.Length - 4; split++)
        {
            var pipe = new Pipe();
            var body = new BodyReader();
            body.Start(pipe.Reader, BodyFraming.Chunked, -1);
            var reading = ReadAllAsync(body);
            await pipe.Writer.WriteAsync(wire.AsMemory(0, split));
            await Task.Yield();
            await pipe.Writer.WriteAsync(wire.AsMemory(split));

            Assert.Equal("hello world", await reading);
            Assert.True(body.IsComplete, $"split at {split}");
            body.Release();
        }
    }

    [Fact]
    public async Task Chunked_Malformed_ThrowsAProtocolError()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("5\r\nhelloXX"u8.ToArray());
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.Chunked, -1);

        await Assert.ThrowsAsync<UpstreamProtocolException>(() => ReadAllAsync(body));
        body.Release();
    }

    [Fact]
    public async Task Chunked_ClosedMidBody_Throws()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("5\r\nhel"u8.ToArray());
        await pipe.Writer.CompleteAsync();
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.Chunked, -1);

        await Assert.ThrowsAsync<IOException>(() => ReadAllAsync(body));
        Assert.False(body.IsComplete);
        body.Release();
    }

    [Fact]
    public async Task Chunked_ConsumerHoldingBackAPartialEvent_GetsMoreData()
    {
        // The SSE relay consumes only whole events and examines the rest: the reader must then
        // wait for more input instead of returning the same bytes again.
        var pipe = new Pipe();
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.Chunked, -1);
        await pipe.Writer.WriteAsync("4\r\ndata\r\n"u8.ToArray());

        var first = await body.ReadAsync();
        Assert.Equal("data", Encoding.ASCII.GetString(first.Buffer.ToArray()));
        body.AdvanceTo(first.Buffer.Start, first.Buffer.End);

        var second = body.ReadAsync();
        Assert.False(second.IsCompleted);
        await pipe.Writer.WriteAsync("2\r\n\n\n\r\n0\r\n\r\n"u8.ToArray());
        var result = await second;
        Assert.Equal("data\n\n", Encoding.ASCII.GetString(result.Buffer.ToArray()));
        Assert.True(result.IsCompleted);
        body.AdvanceTo(result.Buffer.End);
        Assert.True(body.IsComplete);
        body.Release();
    }

    // The relay waits on the worker's socket itself exactly when the next read would (WouldWait):
    // not while decoded bytes are unexamined, not once the body has ended, and never over a reader
    // that is not a connection's. After the wait, the read completes at once.
    [Fact]
    public async Task Chunked_WouldWait_OnlyWhenTheNextReadNeedsTheSocket()
    {
        var pipe = new Pipe();
        var body = new BodyReader();
        body.Start(new ConnectionReader(pipe.Reader.AsStream()), BodyFraming.Chunked, -1);
        Assert.True(body.WouldWait);

        var wait = body.WaitAsync(CancellationToken.None);
        Assert.False(wait.IsCompleted);
        await pipe.Writer.WriteAsync("4\r\ndata\r\n"u8.ToArray());
        await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        var first = body.ReadAsync();
        Assert.True(first.IsCompleted);
        var result = await first;
        body.AdvanceTo(result.Buffer.Start); // nothing examined
        Assert.False(body.WouldWait);
        result = await body.ReadAsync();
        body.AdvanceTo(result.Buffer.Start, result.Buffer.End); // a partial event, examined
        Assert.True(body.WouldWait);

        await pipe.Writer.WriteAsync("2\r\n\n\n\r\n0\r\n\r\n"u8.ToArray());
        await body.WaitAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        result = await body.ReadAsync();
        Assert.Equal(("data\n\n", true), (Encoding.ASCII.GetString(result.Buffer.ToArray()), result.IsCompleted));
        body.AdvanceTo(result.Buffer.End);
        Assert.False(body.WouldWait);
        body.Release();

        var overAPipe = new BodyReader();
        overAPipe.Start(new Pipe().Reader, BodyFraming.Chunked, -1);
        Assert.False(overAPipe.WouldWait);
    }

    [Fact]
    public async Task UntilClose_ReadsToTheEnd()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync("all of it"u8.ToArray());
        await pipe.Writer.CompleteAsync();
        var body = new BodyReader();
        body.Start(pipe.Reader, BodyFraming.UntilClose, -1);

        Assert.Equal("all of it", await ReadAllAsync(body));
        Assert.False(body.IsComplete); // the connection is not reusable
    }

    private static async Task<string> ReadAllAsync(PipeReader reader)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var output = new MemoryStream();
        while (true)
        {
            var result = await reader.ReadAsync(timeout.Token);
            foreach (var segment in result.Buffer)
            {
                output.Write(segment.Span);
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return Encoding.ASCII.GetString(output.ToArray());
            }
        }
    }
}
