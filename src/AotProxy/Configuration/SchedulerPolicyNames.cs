using System.Collections.Immutable;

namespace AotProxy.Configuration;

// The values `scheduler.policy` accepts (SPEC: Config). Admission policies register under these names.
internal static class SchedulerPolicyNames
{
    public const string FairShare = "fairshare";
    public const string Priority = "priority";
    public const string Bucket = "bucket";

    public static ImmutableArray<string> All { get; } = [FairShare, Priority, Bucket];

    public static bool IsKnown(string name) => All.Contains(name, StringComparer.Ordinal);
}
