namespace AotProxy.Ledger;

// What the writer's channel carries: a row for `requests`, or a journal entry. Journal > 0 names
// a journal row. An entry that Opens it holds the row to record if the request never ends (its
// `interrupted` row); a row that does not open it is the request's final row and settles it: the
// writer deletes the journal row in the same transaction, or writes neither when both are in one batch.
internal readonly record struct LedgerEntry(RequestRecord Row, long Journal, bool Opens);
