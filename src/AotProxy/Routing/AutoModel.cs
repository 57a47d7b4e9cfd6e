using AotProxy.Configuration;

namespace AotProxy.Routing;

// model "auto": the gateway picks the served model, among those the tenant may use, in three steps.
// 1. Filter: the model can do what the request needs (its [[models]] capabilities; undeclared: chat
//    only), its context fits the prompt estimate and the completion reserved ([[models]]
//    context_length, else the smallest max_model_len its workers listed; unknown: no limit), and it
//    is healthy with a free slot now (WorkerPool.SpareSlots).
// 2. Score: the share of its slots free (0..1) plus how much cheaper it is than the dearest
//    candidate for this request at [[prices]] (0..1; all free: 1 each).
// 3. [routing] auto_preference: a listed candidate beats any unlisted one, the earlier listed first;
//    the score decides among the rest (the name, on a tie, keeps the choice stable).
// No allocation: two passes over the pools, the second with the first's dearest cost.
internal static class AutoModel
{
    public static AutoChoice Choose(in AutoDemand demand, TenantModel tenant, WorkerSet workers, GatewaySnapshot snapshot)
    {
        var fits = false;
        long dearest = 0;
        foreach (var pool in workers.Pools.Values)
        {
            if (Fits(pool, demand, tenant, snapshot))
            {
                fits = true;
                if (HasRoom(pool, snapshot))
                {
                    dearest = Math.Max(dearest, Cost(pool, demand, snapshot));
                }
            }
        }

        if (!fits)
        {
            return new AutoChoice(null, AutoRefusal.NothingFits);
        }

        var preference = snapshot.Routing.AutoPreference;
        WorkerPool? best = null;
        var bestRank = int.MaxValue;
        var bestScore = double.MinValue;
        foreach (var pool in workers.Pools.Values)
        {
            if (!Fits(pool, demand, tenant, snapshot) || !HasRoom(pool, snapshot))
            {
                continue;
            }

            var rank = preference.IndexOf(pool.Model, 0, preference.Length, StringComparer.Ordinal);
            rank = rank < 0 ? int.MaxValue : rank;
            var score = Score(pool, demand, snapshot, dearest);
            if (rank < bestRank || (rank == bestRank && (score > bestScore || (score == bestScore && string.CompareOrdinal(pool.Model, best!.Model) < 0))))
            {
                (best, bestRank, bestScore) = (pool, rank, score);
            }
        }

        return best is null ? new AutoChoice(null, AutoRefusal.NoCapacity) : new AutoChoice(best, AutoRefusal.None);
    }

    // Step 1 without capacity: what a retry cannot change.
    internal static bool Fits(WorkerPool pool, in AutoDemand demand, TenantModel tenant, GatewaySnapshot snapshot)
    {
        var catalog = snapshot.Models;
        if (!catalog.Allows(tenant, pool.Model))
        {
            return false;
        }

        var entry = catalog.Find(pool.Model);
        var capabilities = entry is { Capabilities: not ModelCapabilities.None } ? entry.Capabilities : ModelCapabilities.Chat;
        if ((capabilities & demand.Needs) != demand.Needs)
        {
            return false;
        }

        var context = entry is { ContextLength: > 0 } ? entry.ContextLength : pool.ContextLength;
        return context == 0 || demand.PromptTokens + demand.CompletionTokens <= context;
    }

    internal static double Score(WorkerPool pool, in AutoDemand demand, GatewaySnapshot snapshot, long dearest)
    {
        var free = (double)pool.SpareSlots(snapshot) / pool.Capacity(snapshot);
        var cheaper = dearest == 0 ? 1 : 1 - ((double)Cost(pool, demand, snapshot) / dearest);
        return free + cheaper;
    }

    private static bool HasRoom(WorkerPool pool, GatewaySnapshot snapshot) => pool.Capacity(snapshot) > 0 && pool.SpareSlots(snapshot) > 0;

    private static long Cost(WorkerPool pool, in AutoDemand demand, GatewaySnapshot snapshot) =>
        snapshot.Prices.For(pool.Model).WorstCaseNanos(demand.PromptTokens, demand.CompletionTokens);
}
