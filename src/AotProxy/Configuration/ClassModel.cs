namespace AotProxy.Configuration;

internal sealed record ClassModel(
    string Name,
    int Priority,           // 0 is the most important
    int Weight,
    TimeSpan MaxQueueWait,
    double MaxUtilization);
