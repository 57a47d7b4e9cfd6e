using AotProxy.Configuration;

namespace AotProxy.Routing;

// p2c_kv's session affinity ([routing] session_affinity): a conversation (RouteRequest.SessionHash,
// from hash_header or the body's `user`) stays on the worker of its last turn, where its growing
// prompt is cached, while that worker is a candidate and not saturated (Saturation). Otherwise
// p2c_kv places the turn as usual, and the conversation moves with it.
internal static class SessionAffinity
{
    // The sticky worker's pool index, or -1 (no session, none remembered, or it cannot take it).
    public static int Pick(WorkerPool pool, in RouteContext context)
    {
        var hash = context.Request.SessionHash;
        if (hash == 0 || !context.Routing.SessionAffinity)
        {
            return -1;
        }

        var index = IndexOf(pool.Workers, pool.Sessions.Find(hash));
        var workers = pool.Workers;
        if (index < 0 || !context.IsCandidate(workers, index)
            || Saturation.IsSaturated(workers[index], workers[index].Load(context.Routing.StaleAfter)))
        {
            return -1;
        }

        workers[index].Affinity.CountSessionPick();
        return index;
    }

    public static void OnPicked(WorkerPool pool, int index, RouteRequest request, RoutingModel routing, TimeProvider time)
    {
        if (request.SessionHash != 0 && routing.SessionAffinity)
        {
            pool.Sessions.Record(request.SessionHash, pool.Workers[index], time.GetTimestamp());
        }
    }

    private static int IndexOf(WorkerState[] workers, WorkerState? worker)
    {
        for (var i = 0; worker is not null && i < workers.Length; i++)
        {
            if (ReferenceEquals(workers[i], worker))
            {
                return i;
            }
        }

        return -1;
    }
}
