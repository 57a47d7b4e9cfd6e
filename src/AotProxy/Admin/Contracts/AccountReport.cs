namespace AotProxy.Admin.Contracts;

// A class or tenant in one model pool: waiting, in flight, and its fair-share virtual token counter.
internal sealed record AccountReport(string Name, int Waiting, int InFlight, double VirtualTokens);
