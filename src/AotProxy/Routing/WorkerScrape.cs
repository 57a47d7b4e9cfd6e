using System.IO.Pipelines;

namespace AotProxy.Routing;

// One GET /metrics of one worker, read as it streams in: the body goes through a PipeReader into
// VllmMetricsReader and is never held whole. Every failure is a value; only the caller's
// cancellation throws. The caller owns the loop, the interval and what a failure means for the worker.
internal static class WorkerScrape
{
    // 4 MiB: vLLM 0.19.1 serves 57 KB for one model on one engine; its histograms grow with
    // engines and LoRA adapters, but not 70-fold. A larger body is a broken or hostile server.
    public const long MaxBodyBytes = 4 * 1024 * 1024;

    // 16 KiB reads: four for a 57 KB scrape rather than fourteen at the PipeReader's 4 KiB default.
    private static readonly StreamPipeReaderOptions PipeOptions = new(bufferSize: 16 * 1024, minimumReadSize: 4 * 1024);

    public static ValueTask<ScrapeResult> ScrapeAsync(HttpClient client, Uri metricsUrl, VllmModelFilter filter, TimeSpan timeout, CancellationToken ct) =>
        ScrapeAsync(client, metricsUrl, filter, timeout, MaxBodyBytes, ct);

    // `timeout` covers the whole scrape, body included: a worker that trickles its metrics is as
    // unusable as one that does not answer.
    public static async ValueTask<ScrapeResult> ScrapeAsync(
        HttpClient client, Uri metricsUrl, VllmModelFilter filter, TimeSpan timeout, long maxBodyBytes, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(metricsUrl);
        ArgumentNullException.ThrowIfNull(filter);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        var reader = new VllmMetricsReader(filter);
        var status = 0;
        long received = 0;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, metricsUrl);

            // prometheus_client answers OpenMetrics if asked for it; this pins the format the reader reads.
            request.Headers.TryAddWithoutValidation("Accept", "text/plain; version=0.0.4");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            status = (int)response.StatusCode;
            if (!response.IsSuccessStatusCode)
            {
                return new ScrapeResult(ScrapeOutcome.HttpStatus, default, status, 0);
            }

            if (response.Content.Headers.ContentLength is long length && length > maxBodyBytes)
            {
                return new ScrapeResult(ScrapeOutcome.TooLarge, default, status, 0);
            }

            var stream = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
            var pipe = PipeReader.Create(stream, PipeOptions);
            try
            {
                long consumedTotal = 0;
                while (true)
                {
                    var result = await pipe.ReadAsync(deadline.Token).ConfigureAwait(false);
                    var buffer = result.Buffer;
                    received = consumedTotal + buffer.Length;
                    if (received > maxBodyBytes)
                    {
                        return new ScrapeResult(ScrapeOutcome.TooLarge, reader.Result, status, received);
                    }

                    var consumed = reader.Feed(buffer, result.IsCompleted);
                    consumedTotal += consumed;
                    pipe.AdvanceTo(buffer.GetPosition(consumed), buffer.End);
                    if (result.IsCompleted)
                    {
                        break;
                    }
                }
            }
            finally
            {
                await pipe.CompleteAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ProbeFailure.IsTransport(ex))
        {
            ct.ThrowIfCancellationRequested();

            // A deadline that fires mid-read may surface as an IOException from the aborted socket.
            var outcome = deadline.IsCancellationRequested || ex is OperationCanceledException ? ScrapeOutcome.Timeout
                : ProbeFailure.IsConnect(ex) ? ScrapeOutcome.ConnectFailed
                : ScrapeOutcome.ResponseFailed;
            return new ScrapeResult(outcome, reader.Result, status, received);
        }

        var metrics = reader.Result;
        var read = metrics.Status switch
        {
            VllmMetricsStatus.Complete => ScrapeOutcome.Ok,
            VllmMetricsStatus.Partial => ScrapeOutcome.Partial,
            _ => metrics.OtherModelSamples > 0 ? ScrapeOutcome.OtherModel : ScrapeOutcome.Invalid,
        };
        return new ScrapeResult(read, metrics, status, received);
    }
}
