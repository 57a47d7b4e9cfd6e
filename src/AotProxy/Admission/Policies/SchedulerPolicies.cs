using System.Collections.Frozen;

namespace AotProxy.Admission.Policies;

// Every scheduler policy by its `scheduler.policy` name.
internal static class SchedulerPolicies
{
    private static readonly FrozenDictionary<string, ISchedulerPolicy> ByName =
        new ISchedulerPolicy[] { new FairSharePolicy(), new PriorityPolicy(), new BucketPolicy() }
            .ToFrozenDictionary(p => p.Name, StringComparer.Ordinal);

    public static ISchedulerPolicy Get(string name) => ByName[name];
}
