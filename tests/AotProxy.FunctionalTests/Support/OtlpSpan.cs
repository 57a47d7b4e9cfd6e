namespace AotProxy.FunctionalTests.Support;

// One span as an OTLP receiver got it: ids in lowercase hex ("" for no parent), kind as OTLP
// numbers it (2 server, 3 client), attributes and events with their values as read.
internal sealed record OtlpSpan(
    string Service,
    string TraceId,
    string SpanId,
    string ParentSpanId,
    string Name,
    int Kind,
    IReadOnlyDictionary<string, object> Attributes,
    IReadOnlyList<OtlpEvent> Events,
    int StatusCode)
{
    public object? this[string key] => Attributes.TryGetValue(key, out var value) ? value : null;
}
