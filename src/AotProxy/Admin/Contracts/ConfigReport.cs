namespace AotProxy.Admin.Contracts;

internal sealed record ConfigReport(long Revision, string Source, DateTimeOffset LoadedAt, ReloadReport LastReload);
