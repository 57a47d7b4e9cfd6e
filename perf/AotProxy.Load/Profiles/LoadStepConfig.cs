using Tomlyn.Serialization;

namespace AotProxy.Load.Profiles;

// One [[load]] step. Which keys apply depends on kind (ProfileValidator checks that):
//   inject        rate, duration           open loop: `rate` requests per second
//   ramp          from, to, duration       open loop: the rate moves linearly from `from` to `to`
//   keep_constant concurrency, duration    closed loop: `concurrency` requests always in flight
//   burst         count, window, duration  `count` requests spread over `window` ("0s": at once);
//                                          the next step starts after `duration` (default: window)
// Numbers are doubles so that "rate = 0.5" works; TOML integers bind to them too.
internal sealed record LoadStepConfig
{
    public string Kind { get; init; } = "";

    public double Rate { get; init; }

    public double From { get; init; }

    public double To { get; init; }

    public int Concurrency { get; init; }

    public int Count { get; init; }

    public string Window { get; init; } = "0s";

    public string Duration { get; init; } = "";

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
