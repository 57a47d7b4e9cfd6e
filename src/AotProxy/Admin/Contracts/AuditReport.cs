namespace AotProxy.Admin.Contracts;

// GET /api/audit: one change, newest first. Actor: the admin token's id.
internal sealed record AuditReport(DateTimeOffset At, string Actor, string Action, string Target, string Detail);
