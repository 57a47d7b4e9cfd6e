namespace AotProxy.Hosting.Parking;

// What the parking listener keeps in its deadline lists (DeadlineList): a connection idle at a
// request boundary, or a parked one (ParkableConnection, or on epoll just its socket, ParkedSocket).
internal abstract class ParkingNode
{
    internal ParkingNode? Previous { get; set; }

    internal ParkingNode? Next { get; set; }

    // The list it is in, if any.
    internal DeadlineList? Owner { get; set; }

    // Environment.TickCount64 when its idle period began: parks and the keep-alive timeout count from it.
    internal long IdleSince { get; set; }

    // Ends a parked connection for good (keep-alive timeout, shutdown); false when it is not parked
    // (it resumed meanwhile, or is being handed over and its next holder closes it).
    internal abstract bool CloseParked();
}
