namespace AotProxy.Inspection;

// Copies a request body into a destination while applying edits at increasing offsets: each
// edit removes bytes of the source and puts others in their place. One pass, no allocation;
// RequestBody applies the usage splice and the priority splice with it in one copy.
internal ref struct SpliceWriter
{
    private readonly ReadOnlySpan<byte> _source;
    private readonly Span<byte> _destination;
    private int _read;
    private int _written;

    public SpliceWriter(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        _source = source;
        _destination = destination;
    }

    // offset is in the source and must not be before the end of the previous edit.
    public void Splice(int offset, int removeLength, scoped ReadOnlySpan<byte> insert)
    {
        Copy(offset - _read);
        insert.CopyTo(_destination[_written..]);
        _written += insert.Length;
        _read = offset + removeLength;
    }

    // Copies the rest of the source; returns how many bytes were written in all.
    public int Finish()
    {
        Copy(_source.Length - _read);
        return _written;
    }

    private void Copy(int count)
    {
        _source.Slice(_read, count).CopyTo(_destination[_written..]);
        _read += count;
        _written += count;
    }
}
