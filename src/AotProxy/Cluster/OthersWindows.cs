using AotProxy.Limits;

namespace AotProxy.Cluster;

// What the other replicas held of one tenant's fleet-wide RPM and TPM windows when this replica
// last read them (StoreResync, after each heartbeat that found every seed of the epoch in): the
// store's bins minus this replica's own, by age at the read. StoreDownPolicy takes them off the
// limit before it splits the rest N ways, so that a window spanning the start of an outage holds
// what the others admitted before it plus at most the limit's remainder (without them a replica
// whose own window was empty admitted its whole share into a minute the others had filled).
// requests and tokens: cumulative, [k] = what the others held at ages 0..k (never negative: own
// bins counted at the neighbouring second on Redis's clock cancel out); readAt: this replica's
// timestamp of the read.
internal sealed class OthersWindows(long[] requests, long[] tokens, long readAt)
{
    // An empty cumulative window: a tenant whose keys held nothing.
    public static readonly long[] None = new long[SlidingWindow.WindowSeconds];

    public long ReadAt => readAt;

    // By age, cumulative (Cumulative): the others' requests, and their tokens.
    public long[] Requests => requests;

    public long[] Tokens => tokens;

    // By age, cumulative: [k] = max(0, fleet[0..k] - own[0..k]).
    public static long[] Cumulative(long[] fleet, long[] own)
    {
        var cumulative = new long[SlidingWindow.WindowSeconds];
        long sum = 0;
        for (var age = 0; age < cumulative.Length; age++)
        {
            sum += fleet[age] - own[age];
            cumulative[age] = Math.Max(sum, 0);
        }

        return cumulative;
    }

    // What of a cumulative window is still in the window `elapsed` after the read: bins of age a
    // at the read are in it until a + elapsed reaches 61 s (counted while a + whole seconds <= 60).
    public static long InWindow(long[] cumulative, TimeSpan elapsed)
    {
        var last = LastAge(elapsed);
        return last < 0 ? 0 : cumulative[last];
    }

    // How long until the oldest of it in the window leaves it: the wait of a refusal made because
    // the others filled the limit (at least 1 s).
    public static TimeSpan Wait(long[] cumulative, TimeSpan elapsed)
    {
        var age = LastAge(elapsed);
        if (age < 0)
        {
            return TimeSpan.FromSeconds(1);
        }

        while (age > 0 && cumulative[age] == cumulative[age - 1])
        {
            age--;
        }

        var leaves = TimeSpan.FromSeconds(SlidingWindow.WindowSeconds - age) - elapsed;
        return leaves > TimeSpan.FromSeconds(1) ? leaves : TimeSpan.FromSeconds(1);
    }

    private static int LastAge(TimeSpan elapsed) =>
        SlidingWindow.WindowSeconds - 1 - (int)Math.Min(Math.Max(elapsed.TotalSeconds, 0), SlidingWindow.WindowSeconds);
}
