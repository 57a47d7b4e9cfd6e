using System.Collections.Frozen;
using System.Collections.Immutable;
using AotProxy.Configuration;

namespace AotProxy.Admission.TimeWindows;

// The snapshot's [[time_windows]], grouped by the class they change. Apply runs once per request,
// right before admission: a class without windows costs one dictionary miss, no clock read, and
// allocates nothing.
internal sealed class TimeWindowSet
{
    private readonly FrozenDictionary<string, ImmutableArray<TimeWindowModel>> _byClass;
    private readonly int _bucketCount;

    public TimeWindowSet(ImmutableArray<TimeWindowModel> windows, int bucketCount)
    {
        _bucketCount = bucketCount;
        _byClass = windows
            .GroupBy(w => w.Class, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => g.ToImmutableArray(), StringComparer.Ordinal);
    }

    public static TimeWindowSet Empty { get; } = new([], bucketCount: 1);

    // The hot path's entry: the clock is read only for a class that has windows.
    public ClassModel Apply(ClassModel cls, TimeProvider time) =>
        _byClass.ContainsKey(cls.Name) ? Apply(cls, time.GetUtcNow()) : cls;

    // The class as the windows active at `now` make it. Several active windows for one class:
    // per field, the one later in the file wins (as a later key would in one table).
    public ClassModel Apply(ClassModel cls, DateTimeOffset now)
    {
        if (_byClass.Count == 0 || !_byClass.TryGetValue(cls.Name, out var windows))
        {
            return cls;
        }

        int? priority = null;
        int? weight = null;
        int? shift = null;
        foreach (var window in windows)
        {
            if (!window.Schedule.IsActive(now, window.Duration))
            {
                continue;
            }

            priority = window.Priority ?? priority;
            weight = window.Weight ?? weight;
            shift = window.BucketShift != 0 ? window.BucketShift : shift;
        }

        if (priority is null && weight is null && shift is null)
        {
            return cls;
        }

        var max = Math.Max(0, _bucketCount - 1);
        return cls with
        {
            Priority = priority ?? cls.Priority,
            Weight = weight ?? cls.Weight,
            FirstBucket = Math.Clamp(cls.FirstBucket + (shift ?? 0), 0, max),
            LastBucket = Math.Clamp(cls.LastBucket + (shift ?? 0), 0, max),
        };
    }
}
