using AotProxy.Routing;
using AotProxy.Routing.Policies;

namespace AotProxy.Tests.Routing;

// p2c_kv keeps a conversation on the worker of its last turn while that worker is not saturated.
public class SessionAffinityTests
{
    private const ulong Session = 0x5E55_1011;

    private static RouteContext Context(TestPool test, ulong session = Session, ulong excluded = 0) =>
        new(test.Snapshot.Routing, test.Snapshot.CircuitBreaker, test.Snapshot.Scheduler, new RouteRequest(0, session, SessionHash: session), test.Time, test.Random, excluded);

    // One turn as the router takes it: p2c_kv picks, the pick is remembered.
    private static int Turn(TestPool test, ulong session = Session)
    {
        var context = Context(test, session);
        var index = new P2cKvPolicy().Pick(test.Pool, context);
        SessionAffinity.OnPicked(test.Pool, index, context.Request, test.Routing, test.Time);
        return index;
    }

    private static TestPool Idle(int count)
    {
        var test = new TestPool(count);
        for (var i = 0; i < count; i++)
        {
            test.Scrape(i, running: 0, waiting: 0);
        }

        return test;
    }

    [Fact]
    public void Turns_StayOnTheFirstWorker_WhileItIsBusierThanTheOthers()
    {
        var test = Idle(4);
        var home = Turn(test);
        test.Scrape(home, running: 20, waiting: 0);

        Assert.All(Enumerable.Range(0, 10), _ => Assert.Equal(home, Turn(test)));
        Assert.Equal(10, test.Workers[home].Affinity.SessionPicks);
        Assert.Equal(0, test.Workers.Where((_, i) => i != home).Sum(w => w.Affinity.SessionPicks));
    }

    [Fact]
    public void Saturated_TheTurnMovesAndTheConversationStaysWhereItMoved()
    {
        var test = Idle(4);
        var home = Turn(test);
        test.Scrape(home, running: 20, waiting: 1);

        var moved = Turn(test);
        Assert.NotEqual(home, moved);

        test.Scrape(home, running: 0, waiting: 0);
        test.Scrape(moved, running: 10, waiting: 0);
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Equal(moved, Turn(test)));
    }

    [Fact]
    public void NotACandidate_Draining_TheTurnMoves()
    {
        var test = Idle(3);
        var home = Turn(test);
        test.Workers[home].Draining = true;

        Assert.All(Enumerable.Range(0, 5), _ => Assert.NotEqual(home, Turn(test)));
    }

    [Fact]
    public void SessionAffinityOff_LoadDecides()
    {
        var test = Idle(4).With(r => r with { SessionAffinity = false });
        var home = Turn(test);
        test.Scrape(home, running: 20, waiting: 0);

        Assert.All(Enumerable.Range(0, 10), _ => Assert.NotEqual(home, Turn(test)));
        Assert.Equal(0, test.Workers[home].Affinity.SessionPicks);
    }

    // The since-scrape correction is not saturation: a worker with free slots and no queue in
    // vLLM keeps its conversation while the gateway's own requests to it are in flight.
    [Fact]
    public void RequestsSentSinceTheScrape_DoNotReleaseTheConversation()
    {
        var test = Idle(2);
        var home = Turn(test);
        test.InFlight(home, 5);

        Assert.True(test.Workers[home].Load(test.Routing.StaleAfter).Waiting >= 1);
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Equal(home, Turn(test)));
    }

    [Fact]
    public void Pick_Session_AllocatesNothing()
    {
        var test = Idle(4);
        var policy = new P2cKvPolicy();
        var context = Context(test);
        var home = Turn(test);
        var picks = new int[100];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < picks.Length; i++)
        {
            picks[i] = policy.Pick(test.Pool, context);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.All(picks, p => Assert.Equal(home, p));
    }

    [Fact]
    public void Table_IsBounded_AndKeepsTheLatest()
    {
        var table = new SessionTable();
        const int sessions = 3 * SessionTable.Slots;
        var workers = new TestPool(7).Workers;
        for (var i = 1; i <= sessions; i++)
        {
            table.Record((ulong)i, workers[i % 7], i);
        }

        var found = Enumerable.Range(1, sessions).Count(i => table.Find((ulong)i) is not null);
        Assert.InRange(found, SessionTable.Slots / 2, SessionTable.Slots);
        Assert.Same(workers[sessions % 7], table.Find(sessions));
        Assert.Null(table.Find(sessions + 1));
    }

    // Three sessions in one 2-way set: the third replaces the one used longer ago.
    [Fact]
    public void Table_NewSession_ReplacesTheQuieterOfItsSet()
    {
        var sameSet = new List<ulong>();
        var set = -1L;
        for (ulong h = 1; sameSet.Count < 3 && h < 10_000_000; h++)
        {
            var s = (long)(StableHash.Mix(h) & (SessionTable.Slots - 2));
            if (set < 0)
            {
                set = s;
            }

            if (s == set)
            {
                sameSet.Add(h);
            }
        }

        var table = new SessionTable();
        var workers = new TestPool(3).Workers;
        var (active, quiet, fresh) = (sameSet[0], sameSet[1], sameSet[2]);
        table.Record(active, workers[0], now: 1);
        table.Record(quiet, workers[1], now: 2);
        table.Record(active, workers[0], now: 3);
        table.Record(fresh, workers[2], now: 4);

        Assert.Equal([workers[0], null, workers[2]], [table.Find(active), table.Find(quiet), table.Find(fresh)]);
    }

    // Discovery or a reload rebuilds the pools: the conversations carry over.
    [Fact]
    public void Rebuild_KeepsTheConversations()
    {
        var workers = new TestPool(3).Workers;
        var set = new WorkerSet(workers);
        set.Pools["m"].Sessions.Record(Session, workers[2], now: 1);

        var rebuilt = WorkerRegistry.Rebuild(set);

        Assert.NotSame(set.Pools["m"], rebuilt.Pools["m"]);
        Assert.Same(workers[2], rebuilt.Pools["m"].Sessions.Find(Session));
    }
}
