using System.Text.Json.Serialization;

namespace AotProxy.Admin.Contracts;

// One [[time_windows]] entry in GET /api/queues: whether it is changing its class right now,
// and until when (absent while inactive).
internal sealed record TimeWindowReport(
    string Name,
    string Class,
    string Schedule,
    string Timezone,
    string Duration,
    bool Active,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTimeOffset? ActiveUntil);
