using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[time_windows]] entry: while an occurrence of the schedule runs, one class gets another
// priority, weight or bucket range (e.g. spot traffic promoted at night).
internal sealed record TimeWindowConfig
{
    public string Name { get; init; } = "";

    // Five-field cron: minute hour day-of-month month day-of-week.
    public string Schedule { get; init; } = "";

    // How long each occurrence lasts, at most 168h (a weekly schedule's whole week).
    public string Duration { get; init; } = "";

    // "UTC", a fixed offset ("+02:00") or an IANA zone id read from the host's tz database.
    public string Timezone { get; init; } = "UTC";

    public string Class { get; init; } = "";

    // -1: unchanged; 0..9: the class's priority while the window is active.
    public int Priority { get; init; } = -1;

    // 0: unchanged; >= 1: the class's weight while the window is active.
    public int Weight { get; init; }

    // Added to the class's bucket range while active, clamped into 0..bucket_count-1;
    // negative moves the class towards bucket 0, the most important.
    public int BucketShift { get; init; }

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
