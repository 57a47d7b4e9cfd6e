using System.Reflection;
using AotProxy.Gateway;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging;

namespace AotProxy.Tests.Logging;

// Issue 15, item 5: the gateway and the simulator share one process and one console in
// `aotproxy demo`, so an event id names one event in both assemblies. Each area's log class
// keeps to its own block of 100 ids (GatewayLog says which).
public sealed class LogEventIdTests
{
    private static readonly Assembly[] Assemblies = [typeof(GatewayHost).Assembly, typeof(SimulatedWorker).Assembly];

    [Fact]
    public void EventIds_AreUniqueAcrossTheGatewayAndTheSimulator()
    {
        var events = Events();

        Assert.True(events.Count > 20, $"only {events.Count} [LoggerMessage] methods found");
        var collisions = events.GroupBy(e => e.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Name))}").ToList();
        Assert.True(collisions.Count == 0, "event ids used twice: " + string.Join("; ", collisions));
    }

    [Fact]
    public void EventIds_KeepEachAreaToABlockOfItsOwn()
    {
        var blocks = Events().GroupBy(e => e.Area).ToDictionary(g => g.Key, g => g.Select(e => e.Id / 100).Distinct().ToList());

        Assert.All(blocks, area => Assert.True(area.Value.Count == 1, $"{area.Key} spans the blocks {string.Join(", ", area.Value)}"));
        var shared = blocks.GroupBy(a => a.Value[0]).Where(g => g.Count() > 1).Select(g => string.Join(" and ", g.Select(a => a.Key))).ToList();
        Assert.True(shared.Count == 0, "areas sharing a block: " + string.Join("; ", shared));
    }

    private static List<(int Id, string Area, string Name)> Events() =>
        [.. Assemblies
            .SelectMany(a => a.GetTypes())
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .Select(m => (Type: t, Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>())))
            .Where(e => e.Attribute is not null)
            .Select(e => (e.Attribute!.EventId, e.Type.FullName!, $"{e.Type.Name}.{e.Method.Name}"))];
}
