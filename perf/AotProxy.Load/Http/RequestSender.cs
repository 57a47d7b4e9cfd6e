using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using AotProxy.Load.Recording;

namespace AotProxy.Load.Http;

// Sends one request and records what happened, timed from its intended send time: a request that
// waited for the runner (or for a connection) has waited from the user's point of view too.
internal sealed class RequestSender : IDisposable
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly HttpClient _client;
    private readonly Uri _uri;
    private readonly TimeSpan _timeout;

    public RequestSender(Uri uri, TimeSpan timeout, int maxConnections)
    {
        _uri = uri;
        _timeout = timeout;
        var handler = new SocketsHttpHandler
        {
            // One connection per request in flight: HTTP/1.1 cannot multiplex, and a request
            // queued behind another connection's response would be the client's delay, not the
            // gateway's.
            MaxConnectionsPerServer = maxConnections,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
        };
        _client = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan, // per request, below, so a timeout is told apart from a stop
            DefaultRequestVersion = HttpVersion.Version11,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    // Records the outcome in `recorder` and returns it (null when the run was stopped mid-request).
    public Task<SendOutcome?> SendAsync(RequestTemplate template, long intendedTicks, ScenarioRecorder recorder, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(template);
        return SendAsync(template, template.NextBody(), null, null, intendedTicks, recorder, stop);
    }

    // The same for a body built by the caller (a conversation's turn): `sessionId` goes in the
    // session header, and the answer's text is appended to `answer`, when they are given.
    public async Task<SendOutcome?> SendAsync(RequestTemplate template, byte[] bodyBytes, string? sessionId, StringBuilder? answer, long intendedTicks, ScenarioRecorder recorder, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(bodyBytes);
        ArgumentNullException.ThrowIfNull(recorder);
        var sent = Stopwatch.GetTimestamp() - intendedTicks;
        using var request = new HttpRequestMessage(HttpMethod.Post, _uri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(bodyBytes) { Headers = { ContentType = Json } },
        };
        if (template.Authorization.Length > 0)
        {
            request.Headers.TryAddWithoutValidation("Authorization", template.Authorization);
        }

        if (sessionId is not null)
        {
            request.Headers.TryAddWithoutValidation(RequestTemplate.SessionHeader, sessionId);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(_timeout);
        using var scanner = new ResponseScanner(template.Stream, answer);
        var status = 0;
        var head = -1L;
        SendOutcome Failed(ErrorKind kind)
        {
            recorder.Error(kind);
            return new SendOutcome(status, kind, -1, Stopwatch.GetTimestamp() - intendedTicks, 0, 0, sent, head, bodyBytes.Length);
        }

        try
        {
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            head = Stopwatch.GetTimestamp() - intendedTicks;
            status = (int)response.StatusCode;
            recorder.Status(status);
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);

            var firstByte = -1L;
            var firstContent = -1L;
            var lastEvent = -1L;
            while (true)
            {
                var read = await body.ReadAsync(scanner.GetMemory(), timeout.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                var now = Stopwatch.GetTimestamp();
                if (firstByte < 0)
                {
                    firstByte = now;
                }

                var batch = scanner.Advance(read);
                if (batch.DataEvents > 0)
                {
                    // Events that arrived in one read are 0 µs apart as the client sees them.
                    if (lastEvent >= 0)
                    {
                        recorder.Itl.Record(ScenarioRecorder.TicksToMicroseconds(now - lastEvent));
                    }

                    for (var i = 1; i < batch.DataEvents; i++)
                    {
                        recorder.Itl.Record(0);
                    }

                    lastEvent = now;
                }

                if (firstContent < 0 && batch.ContentEvents > 0)
                {
                    firstContent = now;
                }
            }

            var end = Stopwatch.GetTimestamp();
            if (status is < 200 or > 299)
            {
                return Failed(ErrorKind.HttpStatus);
            }

            if (template.Stream && !scanner.SawDone)
            {
                return Failed(ErrorKind.Protocol); // cut off: a finished stream ends with [DONE]
            }

            scanner.Complete();
            var ttftAt = template.Stream ? firstContent : firstByte;
            var ttft = ttftAt < 0 ? -1 : ttftAt - intendedTicks;
            recorder.Succeeded(end - intendedTicks, ttft, scanner.PromptTokens, scanner.CompletionTokens);
            return new SendOutcome(status, null, ttft, end - intendedTicks, scanner.PromptTokens, scanner.CompletionTokens, sent, head, bodyBytes.Length);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The run was stopped (Ctrl+C, or the drain deadline): not the target's fault.
            return null;
        }
        catch (OperationCanceledException)
        {
            return Failed(ErrorKind.Timeout);
        }
        catch (HttpRequestException ex)
        {
            return Failed(ex.HttpRequestError switch
            {
                HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError => ErrorKind.Connect,
                HttpRequestError.ResponseEnded or HttpRequestError.InvalidResponse or HttpRequestError.ConfigurationLimitExceeded or HttpRequestError.HttpProtocolError => ErrorKind.Protocol,
                _ => ex.InnerException is IOException ? ErrorKind.Io : ErrorKind.Other,
            });
        }
        catch (InvalidDataException)
        {
            return Failed(ErrorKind.Protocol);
        }
        catch (HttpIOException ex) when (ex.HttpRequestError is HttpRequestError.ResponseEnded or HttpRequestError.InvalidResponse)
        {
            return Failed(ErrorKind.Protocol); // the body ended before its declared length or last chunk
        }
        catch (IOException)
        {
            return Failed(ErrorKind.Io);
        }
        catch (Exception)
        {
            // Nothing may escape: the send is not awaited by anyone, and a lost request would
            // leave the counts short.
            return Failed(ErrorKind.Other);
        }
    }

    public void Dispose() => _client.Dispose();
}
