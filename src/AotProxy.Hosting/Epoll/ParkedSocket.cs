using AotProxy.Hosting.Parking;

namespace AotProxy.Hosting.Epoll;

// A parked connection on the epoll transport (its IParkableTransport record): only its socket (fd,
// loop slot, id, endpoints packed: EpollSocket) and its place in the listener's parked list, ~120 B.
// Its EpollConnection, pipes, send loop and features are gone (EpollConnection.ParkAsync). Events
// come on the loop thread: bytes make a new EpollConnection on the same fd, served as a new
// session; the client's FIN or reset with nothing to read closes the socket here.
internal sealed class ParkedSocket(ParkingListener listener) : ParkingNode, IEpollParkedHandler
{
    private const int Parked = 0;
    private const int Resumed = 1;
    private const int Closing = 2;

    private EpollSocket _socket;
    private int _state;

    public void Adopt(in EpollSocket socket) => _socket = socket;

    public void OnEvents(uint events)
    {
        const uint InputOrEnd = EpollNative.EpollIn | EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr;
        if ((events & InputOrEnd) == 0)
        {
            return; // EPOLLOUT: nothing is being sent
        }

        var ending = (events & (EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr)) != 0;
        if (ending && !_socket.HasInput())
        {
            if (Interlocked.CompareExchange(ref _state, Closing, Parked) == Parked)
            {
                CloseOnLoop();
            }

            return;
        }

        if (Interlocked.CompareExchange(ref _state, Resumed, Parked) == Parked)
        {
            listener.Resume(this, EpollConnection.Resume(_socket, events));
        }
    }

    internal override bool CloseParked()
    {
        if (Interlocked.CompareExchange(ref _state, Closing, Parked) != Parked)
        {
            return false;
        }

        _socket.Loop.Post(static s => ((ParkedSocket)s).CloseOnLoop(), this);
        return true;
    }

    private void CloseOnLoop()
    {
        _socket.Close();
        listener.Closed(this, parked: true);
    }
}
