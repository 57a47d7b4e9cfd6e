namespace AotProxy.Hosting.Epoll;

// What an epoll loop dispatches a readiness event to (a listener or a connection); called on
// the loop's thread only.
internal interface IEpollHandler
{
    void OnEvents(uint events);
}
