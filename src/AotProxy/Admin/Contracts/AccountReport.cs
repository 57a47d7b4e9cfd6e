using System.Text.Json.Serialization;

namespace AotProxy.Admin.Contracts;

// A class or tenant in one model pool: waiting, in flight, and its fair-share virtual token counter.
// Protection: a class's, while per-class protection is on (absent for tenants, and when off).
internal sealed record AccountReport(
    string Name,
    int Waiting,
    int InFlight,
    double VirtualTokens,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ProtectionReport? Protection = null);
