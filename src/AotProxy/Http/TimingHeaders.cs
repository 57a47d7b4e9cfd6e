namespace AotProxy.Http;

// Where a proxied request's time went, on its response (SPEC.md: x-gateway-queue-ms), written
// before the response head: the worker's (Forwarding/ForwardingStage, before each attempt; a
// retry writes them again) or the gateway's own error after admission (ProxyErrors).
//   x-gateway-queue-ms: the time queued for capacity, whole ms rounded up (0: admitted at once):
//     the admission queue's wait, and under [cluster] the waits for the tenant's turn on the
//     fleet's workers and for a worker's slot fleet-wide (ForwardingStage; not the store's answer
//     when it grants at once). Neither header when queue updates sent the head while it waited.
//   x-gateway-overhead-ms: the gateway's own time up to the response head, ms with three
//     decimals: from the request's arrival (its head read), less the queued time and the earlier
//     attempts' time on workers (each from its send to its end). Reading the body counts (a slow
//     upload shows here), and so do pacing waits and a retry's backoff: the gateway's, not a
//     worker's.
internal static class TimingHeaders
{
    public const string QueueMs = "x-gateway-queue-ms";
    public const string OverheadMs = "x-gateway-overhead-ms";

    public static void Write(ProxyRequest request, long now, TimeProvider time)
    {
        var overhead = time.GetElapsedTime(request.Started, now) - request.QueueWait - request.UpstreamTime;
        request.Overhead = overhead > TimeSpan.Zero ? overhead : TimeSpan.Zero;
        var response = request.Context.Response;
        if (response.HasStarted)
        {
            return; // queue updates sent the head before the wait's length was known
        }

        var headers = response.Headers;
        headers[QueueMs] = MillisecondsText.Whole(request.QueueWait);
        headers[OverheadMs] = MillisecondsText.Micros(request.Overhead);
    }
}
