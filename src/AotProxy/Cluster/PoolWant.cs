using AotProxy.Routing;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// A waiting request's want that may preempt, on every worker of its pool it could be routed to
// (FleetWant.Pool), not only the one it asked: written in each one's wants (aotproxy:pwant:{worker},
// GrantScript), so a replica holding a preemptible request on any of them may claim it, every
// grant script holds a freed slot of any of them back for it, and the request takes whichever
// slot comes free first (SharedWorkerSlots.AcquireAsync). A requeued victim is not preemptible
// again: a want on one worker whose only request is one had no victim for a whole prefill
// (perf/RESULTS.md, "Issue 20 (preemption across replicas)"). One per waiting request: one member
// for the whole wait, so one claim, one preemption.
internal sealed class PoolWant
{
    private readonly SharedWorker _asked;
    private readonly int[] _seen;

    // others: the pool's workers besides the one asked (routable when the wait began), with their states.
    public PoolWant(string member, SharedWorker asked, WorkerState[] others, SharedWorker[] othersShared)
    {
        Member = member;
        _asked = asked;
        Others = others;
        OthersShared = othersShared;
        _seen = new int[others.Length];
        Names = others.Length == 0 ? RedisValue.EmptyString : "\n" + asked.Name + string.Concat(othersShared.Select(o => "\n" + o.Name));
    }

    public string Member { get; }

    // A grant served it, and deleted it from every worker's wants: nothing to forget when it leaves.
    public bool IsServed { get; private set; }

    public WorkerState[] Others { get; }

    public SharedWorker[] OthersShared { get; }

    // Every worker's name, each after a newline (the grant script appends it to its `p|` message,
    // for the holders to find a victim on any of them); empty when the pool is the worker asked.
    public RedisValue Names { get; }

    // The grant script's KEYS for a grant of `target`'s slot: its own three, then the other
    // workers' wants (written on a refusal, deleted by the grant that serves it).
    public RedisKey[] KeysFor(SharedWorker target)
    {
        RedisKey[] keys = [.. target.Keys, .. WantsBesides(target)];
        return keys;
    }

    // Every worker's wants key, to delete the want from when it leaves without a grant.
    public IEnumerable<RedisKey> AllWants => WantsBesides(null);

    public void OnServed() => IsServed = true;

    // The other workers' wake-up counts, read before asking the store (SharedWorker.Releases).
    public void See()
    {
        for (var i = 0; i < _seen.Length; i++)
        {
            _seen[i] = OthersShared[i].Releases;
        }
    }

    // Completes when a slot of any of its workers may have come free (`asked`: the asked worker's).
    public Task NextRelease(Task asked) =>
        _seen.Length == 0 ? asked : Task.WhenAny([asked, .. OthersShared.Select((o, i) => o.NextRelease(_seen[i]))]);

    private IEnumerable<RedisKey> WantsBesides(SharedWorker? target)
    {
        if (!ReferenceEquals(target, _asked))
        {
            yield return _asked.Keys[2];
        }

        foreach (var other in OthersShared)
        {
            if (!ReferenceEquals(target, other))
            {
                yield return other.Keys[2];
            }
        }
    }
}
