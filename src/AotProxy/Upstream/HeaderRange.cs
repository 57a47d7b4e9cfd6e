namespace AotProxy.Upstream;

// Where one header's name and value sit in ResponseHead.Bytes.
internal readonly record struct HeaderRange(int NameStart, int NameLength, int ValueStart, int ValueLength);
