using Microsoft.Extensions.Logging;

namespace AotProxy.Cluster;

// Event ids 900-999 (GatewayLog lists every area's block).
internal static partial class ClusterLog
{
    [LoggerMessage(EventId = 900, Level = LogLevel.Information, Message = "Cluster: replica {Replica} joins through {Store} (heartbeat {Heartbeat}, member_ttl {Ttl}, store_down = {StoreDown})")]
    public static partial void Joining(ILogger logger, string replica, string store, TimeSpan heartbeat, TimeSpan ttl, string storeDown);

    [LoggerMessage(EventId = 901, Level = LogLevel.Warning, Message = "Cluster store {Store} unreachable: {Error}; serving degraded (store_down = {StoreDown}) until it returns")]
    public static partial void StoreDown(ILogger logger, string store, string error, string storeDown);

    [LoggerMessage(EventId = 902, Level = LogLevel.Information, Message = "Cluster store {Store} reachable again after {Downtime}; {Members} members")]
    public static partial void StoreBack(ILogger logger, string store, TimeSpan downtime, int members);

    [LoggerMessage(EventId = 903, Level = LogLevel.Warning, Message = "Cluster: replica {Replica} runs config {Digest}, most members run {Majority}: its tenants, limits or workers may differ")]
    public static partial void ConfigDiffers(ILogger logger, string replica, string digest, string majority);

    [LoggerMessage(EventId = 904, Level = LogLevel.Warning, Message = "Cluster: another process (instance {Other}) writes the member record of {Replica}; give each replica its own [cluster].replica")]
    public static partial void NameTaken(ILogger logger, string replica, string other);

    [LoggerMessage(EventId = 905, Level = LogLevel.Information, Message = "Cluster: replica {Replica} left (record removed)")]
    public static partial void Left(ILogger logger, string replica);

    [LoggerMessage(EventId = 906, Level = LogLevel.Warning, Message = "Cluster: reaped replica {Replica}, which stopped beating: {Parts} reservations (worker slots, tenant counters) given back")]
    public static partial void Reaped(ILogger logger, string replica, long parts);

    [LoggerMessage(EventId = 907, Level = LogLevel.Warning, Message = "Cluster: the store did not take the drain of {Worker}: it applies on this replica only, until a heartbeat finds the store back and applies what the store holds")]
    public static partial void DrainNotShared(ILogger logger, string worker);

    [LoggerMessage(EventId = 908, Level = LogLevel.Information, Message = "Cluster: replica {Replica} gave back {Parts} reservations its previous run under this name left")]
    public static partial void ReleasedPreviousLife(ILogger logger, string replica, long parts);

    // 930-939: store_down and the resync after it (StoreDownPolicy, StoreResync).
    [LoggerMessage(EventId = 930, Level = LogLevel.Warning, Message = "Cluster store does not answer, or its epoch waits for the replicas' seeds after a reconnect: limited tenants are decided by this replica alone (store_down = {Mode}, N = {Members} members at the last good heartbeat)")]
    public static partial void DecidingAlone(ILogger logger, string mode, int members);

    [LoggerMessage(EventId = 931, Level = LogLevel.Information, Message = "Cluster store answers again: shared decisions resume (store_down was {Mode}); re-charged {Requests} requests of {Tenants} tenants admitted alone in the last 60 s")]
    public static partial void Resumed(ILogger logger, string mode, long requests, int tenants);

    [LoggerMessage(EventId = 932, Level = LogLevel.Warning, Message = "Cluster store had no epoch (first start, or restarted without its data): epoch {Epoch} begins")]
    public static partial void EpochStarted(ILogger logger, string epoch);

    [LoggerMessage(EventId = 933, Level = LogLevel.Information, Message = "Cluster epoch {Epoch}: seeded {Requests} requests of the last 60 s and the budgets' spend from this replica (first seed of this replica in this epoch: {First})")]
    public static partial void Seeded(ILogger logger, string epoch, long requests, bool first);

    [LoggerMessage(EventId = 934, Level = LogLevel.Warning, Message = "Cluster epoch {Epoch}: shared decisions resume without the seeds of {Missing}, which did not come within {Wait}")]
    public static partial void SeedsMissing(ILogger logger, string epoch, string missing, TimeSpan wait);

    [LoggerMessage(EventId = 935, Level = LogLevel.Information, Message = "Cluster: {Parts} of this replica's reserved parts set to what it holds (places in flight, budget reservations, worker slots)")]
    public static partial void Reconciled(ILogger logger, long parts);

    [LoggerMessage(EventId = 936, Level = LogLevel.Information, Message = "Cluster epoch {Epoch}: seeded the budgets' spend of {Claimed} ledger files from the shared ledger ({Ledgers} in it; the others' spend was in already)")]
    public static partial void LedgersSeeded(ILogger logger, string epoch, long claimed, int ledgers);

    [LoggerMessage(EventId = 937, Level = LogLevel.Warning, Message = "Cluster epoch {Epoch}: the shared ledger did not answer ({Reason}); the spend of replicas that are gone is seeded at a later heartbeat")]
    public static partial void LedgersSeedFailed(ILogger logger, string epoch, string reason);
}
