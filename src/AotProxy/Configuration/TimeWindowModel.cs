using AotProxy.Admission.TimeWindows;

namespace AotProxy.Configuration;

internal sealed record TimeWindowModel(
    string Name,
    CronSchedule Schedule,
    TimeSpan Duration,
    string Class,
    int? Priority,      // null: the class's own
    int? Weight,        // null: the class's own
    int BucketShift)    // 0: the class's own bucket range
{
    // The running occurrence's end, or null when the window is not active at `now`.
    public DateTimeOffset? ActiveUntil(DateTimeOffset now) =>
        Schedule.ActiveStart(now, Duration) is { } start ? start + Duration : null;
}
