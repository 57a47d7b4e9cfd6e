using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace AotProxy.Hosting.Epoll;

// One thread, one epoll instance: it waits for readiness and calls the handler registered for
// each event, then runs the work other threads posted (a registration, a resumed read, a close).
// An eventfd wakes it for posted work. Handlers are found by a token (slot | generation << 32),
// so a late event for a slot that was freed and reused within one batch is ignored.
internal sealed unsafe class EpollLoop : IDisposable
{
    // 256 events per epoll_wait: one call serves a burst on hundreds of connections.
    private const int MaxEvents = 256;
    private const ulong WakeToken = ulong.MaxValue;

    [ThreadStatic]
    private static EpollLoop? _current;

    private readonly int _epfd;
    private readonly int _wakeFd;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<(Action<object> Work, object State)> _work = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IEpollHandler?[] _handlers = new IEpollHandler?[64];
    private uint[] _generations = new uint[64];
    private readonly Stack<int> _freeSlots = new();
    private int _nextSlot;
    private int _wakePending;
    private volatile bool _stopping;
    private volatile bool _stopped;

    public EpollLoop(string name)
    {
        _epfd = EpollNative.EpollCreate1(EpollNative.EpollCloexec);
        if (_epfd < 0)
        {
            throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
        }

        _wakeFd = EpollNative.EventFd(0, EpollNative.EfdNonBlock | EpollNative.EpollCloexec);
        if (_wakeFd < 0 || EpollNative.Control(_epfd, EpollNative.EpollCtlAdd, _wakeFd, EpollNative.EpollIn | EpollNative.EpollEt, WakeToken) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            EpollNative.Close(_epfd);
            throw new IOException($"eventfd failed: errno {errno}");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public int EpollFd => _epfd;

    // The loop whose thread is running the caller, if any: an upstream connection opened while a
    // request read on a loop is served joins that loop (EpollClientLoops).
    public static EpollLoop? Current => _current;

    public bool IsLoopThread => Environment.CurrentManagedThreadId == _thread.ManagedThreadId;

    // Runs `work` on the loop thread, after the events of the current batch. Once the loop has
    // stopped, the caller runs it (a close after the listener's disposal still closes its fd).
    public void Post(Action<object> work, object state)
    {
        _work.Enqueue((work, state));
        if (_stopped)
        {
            RunPosted();
            return;
        }

        if (!IsLoopThread && Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            EpollNative.Write(_wakeFd, (byte*)&one, sizeof(ulong));
        }
    }

    // Loop thread only: adds fd to the interest set; the token names the handler's slot.
    public ulong Register(int fd, IEpollHandler handler, uint events)
    {
        if (!_freeSlots.TryPop(out var slot))
        {
            slot = _nextSlot++;
            if (slot == _handlers.Length)
            {
                Array.Resize(ref _handlers, slot * 2);
                Array.Resize(ref _generations, slot * 2);
            }
        }

        _handlers[slot] = handler;
        var token = (uint)slot | ((ulong)_generations[slot] << 32);
        if (EpollNative.Control(_epfd, EpollNative.EpollCtlAdd, fd, events, token) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            Unregister(-1, token);
            throw new IOException($"epoll_ctl(ADD) failed: errno {errno}");
        }

        return token;
    }

    // Loop thread only: the slot is free for reuse and its late events are dropped. fd < 0: not
    // in the interest set (close(2) removes it too, when nothing else holds the file).
    public void Unregister(int fd, ulong token)
    {
        if (_stopped)
        {
            return; // the epoll instance is closed, and with it the interest set
        }

        if (fd >= 0)
        {
            EpollNative.Control(_epfd, EpollNative.EpollCtlDel, fd, 0, 0);
        }

        var slot = (int)(uint)token;
        _handlers[slot] = null;
        _generations[slot]++;
        _freeSlots.Push(slot);
    }

    // Stops the thread after the work posted so far; what is posted later runs on the poster.
    public Task StopAsync()
    {
        _stopping = true;
        Post(static _ => { }, this);
        return _exited.Task;
    }

    public void Dispose() => StopAsync();

    private void Run()
    {
        _current = this;
        var events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EpollNative.EventSize));
        try
        {
            while (!_stopping)
            {
                var count = EpollNative.EpollWait(_epfd, events, MaxEvents, -1);
                if (count < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EpollNative.EIntr)
                    {
                        continue;
                    }

                    break;
                }

                for (var i = 0; i < count; i++)
                {
                    var ev = events + (i * EpollNative.EventSize);
                    var token = *(ulong*)(ev + EpollNative.EventDataOffset);
                    if (token == WakeToken)
                    {
                        ulong value;
                        EpollNative.Read(_wakeFd, (byte*)&value, sizeof(ulong));
                        Volatile.Write(ref _wakePending, 0);
                        continue;
                    }

                    var slot = (int)(uint)token;
                    if (_handlers[slot] is { } handler && _generations[slot] == (uint)(token >> 32))
                    {
                        handler.OnEvents(*(uint*)ev);
                    }
                }

                RunPosted();
            }
        }
        finally
        {
            NativeMemory.Free(events);
            _stopped = true;
            RunPosted();
            EpollNative.Close(_wakeFd);
            EpollNative.Close(_epfd);
            _exited.TrySetResult();
        }
    }

    private void RunPosted()
    {
        while (_work.TryDequeue(out var item))
        {
            item.Work(item.State);
        }
    }
}
