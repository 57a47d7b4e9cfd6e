namespace AotProxy.Admin.Contracts;

internal sealed record StatusResponse(string Version, double UptimeSeconds, ConfigReport Config, TotalsReport Totals, RuntimeReport Runtime, LedgerReport? Ledger);
