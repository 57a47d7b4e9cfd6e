namespace AotProxy.Routing;

// One GET /health of one worker: a 2xx status within the timeout is healthy, anything else is
// not. Every failure is a value; only the caller's cancellation throws.
internal static class HealthProbe
{
    public static async ValueTask<HealthProbeResult> ProbeAsync(HttpClient client, Uri healthUrl, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(healthUrl);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, healthUrl);

            // The status is the answer; vLLM's body is empty, and disposing the response lets the
            // handler drain whatever else came so the connection can be reused.
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            return new HealthProbeResult(response.IsSuccessStatusCode ? HealthOutcome.Healthy : HealthOutcome.HttpStatus, status);
        }
        catch (Exception ex) when (ProbeFailure.IsTransport(ex))
        {
            ct.ThrowIfCancellationRequested();
            var outcome = deadline.IsCancellationRequested || ex is OperationCanceledException ? HealthOutcome.Timeout
                : ProbeFailure.IsConnect(ex) ? HealthOutcome.ConnectFailed
                : HealthOutcome.ResponseFailed;
            return new HealthProbeResult(outcome, 0);
        }
    }
}
