namespace AotProxy.Limits;

// What a stream's next content chunk found in its tenant's budgets (StreamBudget.TryDebit).
internal enum StreamDebit : byte
{
    Taken,      // debited: relay it
    Cut,        // no room (or, store_down = "closed", no store to lease from): the stream ends here
    NeedsBlock, // the fleet block it draws on is used up: lease the next one, then ask again
}
