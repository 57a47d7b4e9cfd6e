namespace AotProxy.Gateway;

// How socket work is scheduled in the binary. With inline completions, each epoll thread runs
// the continuations of its own sockets (one thread per core, as nginx runs one worker per
// core) instead of handing every read and write to the thread pool: on one pinned core that is
// 44 µs of CPU per proxied request instead of 63 µs (perf/RESULTS.md). Nothing on the data
// plane blocks a thread, which is what this mode asks of the code.
internal static class EventLoop
{
    private const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    // Must run before the first socket is created: the runtime reads the variable once. An
    // operator's own setting (0 or 1) wins.
    public static void UseInlineCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
        }
    }
}
