using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Threading;
using StackExchange.Redis;

namespace AotProxy.Cluster;

// A Lua script of the hot path that a request awaits (the admit, the worker grant), sent by its
// SHA-1: EVALSHA with the hash we computed once, where the client would look the script's text up
// in its cache on every call (108 B and a hash of the text per call more, SharedDecisionBenchmarks'
// ScriptByText against ScriptByHash). A store that does not know the script (restarted empty,
// SCRIPT FLUSH) answers NOSCRIPT: that call goes by the text, which loads it again, and the next
// ones by the hash. Fire-and-forget scripts stay on the text overload: their NOSCRIPT would not be
// seen, and the client resends those by their text itself.
internal sealed class ClusterScript(string text)
{
#pragma warning disable CA5350 // SHA-1 is how Redis names a script (EVALSHA), not a security measure
    private readonly byte[] _hash = SHA1.HashData(Encoding.UTF8.GetBytes(text));
#pragma warning restore CA5350

    public string Text { get; } = text;

    [AsyncMethodBuilder(typeof(PooledValueTaskMethodBuilder<>))]
    public async ValueTask<RedisResult> EvaluateAsync(IDatabase db, RedisKey[] keys, RedisValue[] args)
    {
        try
        {
            return await db.ScriptEvaluateAsync(_hash, keys, args).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await db.ScriptEvaluateAsync(Text, keys, args).ConfigureAwait(false);
        }
    }
}
