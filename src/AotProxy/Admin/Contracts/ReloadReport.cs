namespace AotProxy.Admin.Contracts;

internal sealed record ReloadReport(DateTimeOffset At, bool Ok, long Revision, string[] Errors);
