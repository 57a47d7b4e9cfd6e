using AotProxy.Configuration;

namespace AotProxy.Routing;

// model "auto": the gateway picks the served model, among those the tenant may use, in three steps.
// 1. Filter: the model can do what the request needs (its [[models]] capabilities; undeclared: chat
//    only), its context fits the prompt estimate and the completion reserved ([[models]]
//    context_length, else the smallest max_model_len its workers listed; unknown: no limit), and it
//    is healthy with a free slot now (WorkerPool.FreeShare).
// 2. Score: the share of its slots free (0..1) plus how much cheaper it is than the dearest
//    candidate for this request at [[prices]] (0..1; all free: 1 each).
// 3. [routing] auto_preference: a listed candidate beats any unlisted one, the earlier listed first;
//    the score decides among the rest (the name, on a tie, keeps the choice stable).
// No allocation: one pass filters each pool once (its free share and cost kept on the stack), a
// second over the survivors scores them with the first's dearest cost.
internal static class AutoModel
{
    // More pools than this (models served at once): the pass's arrays go on the heap.
    private const int StackPools = 64;

    public static AutoChoice Choose(in AutoDemand demand, TenantModel tenant, WorkerSet workers, GatewaySnapshot snapshot)
    {
        var pools = workers.Pools.Values;
        var room = pools.Length <= StackPools ? stackalloc double[pools.Length] : new double[pools.Length];
        var costs = pools.Length <= StackPools ? stackalloc long[pools.Length] : new long[pools.Length];
        var fits = false;
        long dearest = 0;
        for (var i = 0; i < pools.Length; i++)
        {
            room[i] = WorkerPool.NoRoom;
            if (!Fits(pools[i], demand, tenant, snapshot))
            {
                continue;
            }

            fits = true;
            room[i] = pools[i].FreeShare(snapshot);
            if (room[i] > 0)
            {
                costs[i] = Cost(pools[i], demand, snapshot);
                dearest = Math.Max(dearest, costs[i]);
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
        for (var i = 0; i < pools.Length; i++)
        {
            if (room[i] <= 0)
            {
                continue; // does not fit, or no free slot now
            }

            var pool = pools[i];
            var rank = preference.IndexOf(pool.Model, 0, preference.Length, StringComparer.Ordinal);
            rank = rank < 0 ? int.MaxValue : rank;
            var score = Score(room[i], costs[i], dearest);
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

    // Step 2: the free share (0..1) plus how much cheaper than the dearest candidate (0..1).
    internal static double Score(double freeShare, long cost, long dearest) =>
        freeShare + (dearest == 0 ? 1 : 1 - ((double)cost / dearest));

    internal static long Cost(WorkerPool pool, in AutoDemand demand, GatewaySnapshot snapshot) =>
        snapshot.Prices.For(pool.Model).WorstCaseNanos(demand.PromptTokens, demand.CompletionTokens);
}
