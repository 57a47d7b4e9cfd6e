namespace AotProxy.Hosting.Parking;

// A transport connection that parks without itself: at a park it hands its socket to a small
// parked record of its own (a ParkingNode in the listener's parked list) and becomes garbage; the
// record serves the socket's next bytes with a new transport connection (ParkingListener.Resume)
// and closes the socket at its end or when CloseParked is called. The epoll transport has it
// (EpollConnection, ParkedSocket: ~120 B a parked connection). A transport without it parks whole:
// its objects stay, with the parked wait a pending read in ParkableConnection.
internal interface IParkableTransport
{
    // Once Kestrel's session has ended at a boundary and the transport's pending read was canceled:
    // the parked record, or null when the connection is not at rest (input arrived, output is being
    // sent, it is ending), which is then served on unchanged.
    ValueTask<ParkingNode?> ParkAsync(ParkingListener listener);
}
