using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace AotProxy.Load.Http;

// Reads a response body as it arrives, without a string per event. For a stream, complete lines
// are examined as soon as their '\n' arrives and dropped; a blank line ends an event, so only an
// unfinished line stays in the buffer and a read may end anywhere (inside "data:", inside "\r\n").
// For JSON, the body is kept whole and `usage` is read at the end. The caller reads into
// GetMemory() and reports how much it read with Advance().
internal sealed class ResponseScanner : IDisposable
{
    // 16 KiB: a vLLM chunk is about 300 bytes, so one read takes in dozens of them.
    private const int InitialSize = 16 * 1024;
    private const int MinRead = 4 * 1024;

    // A line or JSON body beyond this is not an LLM response; stop instead of growing forever.
    private const int MaxSize = 8 * 1024 * 1024;

    private readonly bool _stream;
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
    private int _start;   // first byte not yet consumed (the unfinished line)
    private int _end;     // end of the bytes read
    private int _scanned; // bytes after _start known to hold no '\n'

    // The event being read: set by its data line, counted at its blank line.
    private bool _eventHasData;
    private bool _eventIsDone;
    private bool _eventHasContent;

    // The answer's text (every "content" or "text" string) goes to `answer` when it is given: a
    // multi-turn chat sends it back as the assistant's message.
    private readonly StringBuilder? _answer;

    public ResponseScanner(bool stream, StringBuilder? answer = null)
    {
        _stream = stream;
        _answer = answer;
    }

    public int DataEvents { get; private set; }

    public int ContentEvents { get; private set; }

    public bool SawDone { get; private set; }

    public bool HasUsage { get; private set; }

    public long PromptTokens { get; private set; }

    public long CompletionTokens { get; private set; }

    public Memory<byte> GetMemory()
    {
        if (_buffer.Length - _end >= MinRead)
        {
            return _buffer.AsMemory(_end);
        }

        var used = _end - _start;
        if (_stream && _start > 0 && _buffer.Length - used >= MinRead)
        {
            // Compact: the consumed lines are gone, only the unfinished one moves.
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, used);
        }
        else
        {
            var size = Math.Max(_buffer.Length * 2, used + MinRead);
            if (size > MaxSize)
            {
                throw new InvalidDataException($"a response line or body over {MaxSize / (1024 * 1024)} MiB");
            }

            var bigger = ArrayPool<byte>.Shared.Rent(size);
            Buffer.BlockCopy(_buffer, _start, bigger, 0, used);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }

        _end = used;
        _start = 0;
        return _buffer.AsMemory(_end);
    }

    public SseBatch Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _end += count;
        return _stream ? ScanLines() : default;
    }

    // Test and convenience path: copies bytes in (in as many reads as the buffer needs).
    public SseBatch Feed(ReadOnlySpan<byte> bytes)
    {
        var data = 0;
        var content = 0;
        while (!bytes.IsEmpty)
        {
            var memory = GetMemory().Span;
            var n = Math.Min(memory.Length, bytes.Length);
            bytes[..n].CopyTo(memory);
            bytes = bytes[n..];
            var batch = Advance(n);
            data += batch.DataEvents;
            content += batch.ContentEvents;
        }

        return new SseBatch(data, content);
    }

    // For a JSON body, once it has all arrived.
    public void Complete()
    {
        if (!_stream)
        {
            var body = _buffer.AsSpan(_start, _end - _start);
            ReadUsage(body);
            if (_answer is not null)
            {
                AppendAnswer(body);
            }
        }
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private SseBatch ScanLines()
    {
        var data = 0;
        var content = 0;
        while (true)
        {
            var unread = _buffer.AsSpan(_start + _scanned, _end - _start - _scanned);
            var newline = unread.IndexOf((byte)'\n');
            if (newline < 0)
            {
                _scanned = _end - _start;
                break;
            }

            var line = _buffer.AsSpan(_start, _scanned + newline);
            if (!line.IsEmpty && line[^1] == (byte)'\r')
            {
                line = line[..^1];
            }

            if (line.IsEmpty)
            {
                // The blank line ends the event.
                if (_eventIsDone)
                {
                    SawDone = true;
                }
                else if (_eventHasData)
                {
                    data++;
                    if (_eventHasContent)
                    {
                        content++;
                    }
                }

                _eventHasData = _eventIsDone = _eventHasContent = false;
            }
            else if (line.StartsWith("data:"u8))
            {
                DataLine(line[5..]);
            }

            // Other fields (event:, id:, retry:) and comments (": keep-alive") carry nothing we measure.
            _start += _scanned + newline + 1;
            _scanned = 0;
        }

        if (_start == _end)
        {
            _start = _end = _scanned = 0;
        }

        DataEvents += data;
        ContentEvents += content;
        return new SseBatch(data, content);
    }

    private void DataLine(ReadOnlySpan<byte> payload)
    {
        if (!payload.IsEmpty && payload[0] == (byte)' ')
        {
            payload = payload[1..];
        }

        _eventHasData = true;
        if (payload.SequenceEqual("[DONE]"u8))
        {
            _eventIsDone = true;
            return;
        }

        // "content" (chat), "reasoning_content" (reasoning models) and "text" (completions):
        // the first token's arrival is the first of these that is not "".
        if (HasNonEmptyString(payload, "content\":"u8) || HasNonEmptyString(payload, "\"text\":"u8))
        {
            _eventHasContent = true;
            if (_answer is not null)
            {
                AppendAnswer(payload);
            }
        }

        ReadUsage(payload);
    }

    // Only when the text is wanted: a JSON reader per event costs more than the scan above.
    // "reasoning_content" is left out, as a chat client leaves it out of the history it sends back.
    private void AppendAnswer(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName && (reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8))
                    && reader.Read() && reader.TokenType == JsonTokenType.String)
                {
                    _answer!.Append(reader.GetString());
                }
            }
        }
        catch (JsonException)
        {
            // A malformed event adds no text; the stream's own checks ([DONE], status) judge the request.
        }
    }

    // Whether some occurrence of key is followed by a non-empty string. Inside a JSON string a
    // quote is escaped (\"), so the unescaped key pattern only matches real keys.
    private static bool HasNonEmptyString(ReadOnlySpan<byte> json, ReadOnlySpan<byte> key)
    {
        while (true)
        {
            var at = json.IndexOf(key);
            if (at < 0)
            {
                return false;
            }

            json = SkipWhitespace(json[(at + key.Length)..]);
            if (json.Length >= 2 && json[0] == (byte)'"' && json[1] != (byte)'"')
            {
                return true;
            }
        }
    }

    private void ReadUsage(ReadOnlySpan<byte> json)
    {
        var at = json.IndexOf("\"usage\":"u8);
        if (at < 0)
        {
            return;
        }

        var usage = SkipWhitespace(json[(at + 8)..]);
        if (usage.IsEmpty || usage[0] != (byte)'{')
        {
            return; // "usage":null on every chunk but the last
        }

        // No cut at the first '}': "prompt_tokens_details":{...} may come before the counts, and
        // these keys appear nowhere else in a chunk.
        if (TryReadNumber(usage, "\"prompt_tokens\":"u8, out var prompt))
        {
            PromptTokens = prompt;
            HasUsage = true;
        }

        if (TryReadNumber(usage, "\"completion_tokens\":"u8, out var completion))
        {
            CompletionTokens = completion;
            HasUsage = true;
        }
    }

    private static bool TryReadNumber(ReadOnlySpan<byte> json, ReadOnlySpan<byte> key, out long value)
    {
        value = 0;
        var at = json.IndexOf(key);
        return at >= 0 && Utf8Parser.TryParse(SkipWhitespace(json[(at + key.Length)..]), out value, out _);
    }

    private static ReadOnlySpan<byte> SkipWhitespace(ReadOnlySpan<byte> json)
    {
        var i = 0;
        while (i < json.Length && json[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            i++;
        }

        return json[i..];
    }
}
