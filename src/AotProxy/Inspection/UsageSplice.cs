namespace AotProxy.Inspection;

// One edit to the request body that makes stream_options.include_usage true:
// remove RemoveLength bytes at Offset and put Insert there. Computed during inspection, so the
// forwarder never parses the body a second time.
internal readonly record struct UsageSplice(int Offset, int RemoveLength, UsageSpliceKind Kind)
{
    public ReadOnlySpan<byte> Insert => Kind switch
    {
        // After the root's "{": the body had no stream_options at all.
        UsageSpliceKind.AddStreamOptions => "\"stream_options\":{\"include_usage\":true},"u8,
        UsageSpliceKind.AddStreamOptionsLast => "\"stream_options\":{\"include_usage\":true}"u8,
        // After stream_options' own "{".
        UsageSpliceKind.AddIncludeUsage => "\"include_usage\":true,"u8,
        UsageSpliceKind.AddIncludeUsageLast => "\"include_usage\":true"u8,
        // In place of include_usage's `false` or `null`, or stream_options' `null` (never of a value
        // vLLM would refuse: RequestInspector leaves those to the worker).
        UsageSpliceKind.ReplaceIncludeUsageValue => "true"u8,
        UsageSpliceKind.ReplaceStreamOptionsValue => "{\"include_usage\":true}"u8,
        _ => default,
    };

    public int NewLength(int bodyLength) => bodyLength - RemoveLength + Insert.Length;

    // Writes the spliced body into destination, which must hold NewLength(body.Length) bytes.
    public void Apply(ReadOnlySpan<byte> body, Span<byte> destination)
    {
        var writer = new SpliceWriter(body, destination);
        writer.Splice(Offset, RemoveLength, Insert);
        writer.Finish();
    }
}
