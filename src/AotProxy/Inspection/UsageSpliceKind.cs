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
    FormField, // a multipart form's stream_include_usage (MultipartForm.Write; Insert is not used)
}
