namespace AotProxy.Upstream;

internal enum ParseStatus : byte
{
    Incomplete, // the bytes so far are a valid prefix: read more
    Complete,
    Invalid,
}
