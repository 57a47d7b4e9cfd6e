namespace AotProxy.Hosting.Epoll;

// What takes a parked connection's socket over from its EpollConnection (EpollConnection.ParkAsync):
// Adopt runs on the loop thread before the first event reaches it, in the same loop slot.
internal interface IEpollParkedHandler : IEpollHandler
{
    void Adopt(in EpollSocket socket);
}
