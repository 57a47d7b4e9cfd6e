namespace AotProxy.Admin.Contracts;

// /api/status: the usage ledger's file and counters (null when ledger.path = ""). Dropped rows
// (queue full or a failed write) are missing from the ledger, never from the in-memory totals.
internal sealed record LedgerReport(string Path, long RowsWritten, long RowsDropped, long RowsQueued);
