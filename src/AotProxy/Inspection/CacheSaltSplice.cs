namespace AotProxy.Inspection;

// Where a tenant's cache_salt (TenantCacheSalt) goes into a request body: in place of the value
// of the client's own `cache_salt` (the last one: Python's json keeps the last of duplicate keys,
// so that is the one vLLM reads), whatever its type; Length 0: the client sent none, and
// `"cache_salt":"..."` goes in before the root's closing brace (PrioritySplice's offset).
internal readonly record struct CacheSaltSplice(int Offset, int Length)
{
    // `,"cache_salt":` is 14 bytes and the quoted hex 66.
    public const int MaxKeyLength = 80;

    public bool HasClientValue => Length > 0;

    // The key and the value, for a body without the key.
    public static ReadOnlySpan<byte> FormatKey(ReadOnlySpan<byte> salt, bool afterProperty, Span<byte> destination)
    {
        var key = afterProperty ? ",\"cache_salt\":"u8 : "\"cache_salt\":"u8;
        key.CopyTo(destination);
        salt.CopyTo(destination[key.Length..]);
        return destination[..(key.Length + salt.Length)];
    }
}
