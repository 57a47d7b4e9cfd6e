namespace AotProxy.Tests.Tracing;

// An ActivityListener is process-wide: while one of these tests listens to the gateway's source,
// no other test may make spans, and a test that checks "off" must see no listener.
[CollectionDefinition(nameof(SpanListenerGroup), DisableParallelization = true)]
public sealed class SpanListenerGroup;
