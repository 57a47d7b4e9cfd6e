namespace AotProxy.Ledger;

// A row of the local ledger file on its way to the shared ledger: Id is its number in the file
// (requests.id), part of its key there (PostgresLedger).
internal readonly record struct SpooledRow(long Id, RequestRecord Row);
