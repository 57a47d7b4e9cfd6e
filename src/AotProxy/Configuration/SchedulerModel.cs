namespace AotProxy.Configuration;

internal sealed record SchedulerModel(string Policy);
