using System.Collections.Concurrent;
using System.Diagnostics;
using AotProxy.Tracing;

namespace AotProxy.Tests.Tracing;

// Listens to the gateway's ActivitySource as the OTel SDK's parent-based sampler would, recording
// every span it ends: `sampled` decides for a root span; a parent's sampled flag for its child,
// and a local parent that is not sampled makes no child at all (the SDK's "propagate or ignore").
internal sealed class SpanRecorder : IDisposable
{
    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();

    public SpanRecorder(bool sampled = true)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == GatewayTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.Parent == default ? (sampled ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.PropagationData)
                : options.Parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded) ? ActivitySamplingResult.AllDataAndRecorded
                : options.Parent.IsRemote ? ActivitySamplingResult.PropagationData
                : ActivitySamplingResult.None,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public IReadOnlyList<Activity> Stopped => [.. _stopped];

    public Activity Single(ActivityKind kind) => Assert.Single(Stopped, span => span.Kind == kind);

    public void Dispose() => _listener.Dispose();
}
