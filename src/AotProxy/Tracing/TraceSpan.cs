using System.Diagnostics;

namespace AotProxy.Tracing;

// What a stage adds to the request's span where it runs. A span that is null (tracing off) or not
// recorded (sampled out: it only carries the trace context on) costs one check and allocates
// nothing: a value is boxed only inside the check (an int or double boxed at the call, 24 B each,
// showed as +47 B/request with tracing off in perf/compare.sh).
internal static class TraceSpan
{
    public static void Event(Activity? span, string name)
    {
        if (span is { IsAllDataRequested: true })
        {
            span.AddEvent(new ActivityEvent(name));
        }
    }

    public static void Event(Activity? span, string name, string key, string value)
    {
        if (span is { IsAllDataRequested: true })
        {
            span.AddEvent(new ActivityEvent(name, tags: new ActivityTagsCollection { [key] = value }));
        }
    }

    public static void Event(Activity? span, string name, string key, int value)
    {
        if (span is { IsAllDataRequested: true })
        {
            span.AddEvent(new ActivityEvent(name, tags: new ActivityTagsCollection { [key] = value }));
        }
    }

    public static void Tag(Activity? span, string key, double value)
    {
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag(key, value);
        }
    }
}
