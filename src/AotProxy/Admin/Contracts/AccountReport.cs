using System.Text.Json.Serialization;

namespace AotProxy.Admin.Contracts;

// A class or tenant in one model pool: waiting, in flight, and its fair-share virtual token counter.
// Protection: a class's, while per-class protection is on (absent for tenants, and when off).
// Preemptions: a class's requests preempted before their first byte (absent for tenants).
internal sealed record AccountReport(
    string Name,
    int Waiting,
    int InFlight,
    double VirtualTokens,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ProtectionReport? Protection = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? Preemptions = null);
