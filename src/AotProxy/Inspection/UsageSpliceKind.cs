namespace AotProxy.Inspection;

internal enum UsageSpliceKind : byte
{
    None,
    AddStreamOptions,
    AddStreamOptionsLast,
    AddIncludeUsage,
    AddIncludeUsageLast,
    ReplaceIncludeUsageValue,
    ReplaceStreamOptionsValue,
}
