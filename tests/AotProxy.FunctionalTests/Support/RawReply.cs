namespace AotProxy.FunctionalTests.Support;

// What RawWorker sends for one request: the parts in order, then maybe a close.
internal sealed record RawReply(byte[][] Parts, bool CloseAfter = false, TimeSpan PauseBetweenParts = default)
{
    public static RawReply Of(byte[] bytes, bool closeAfter = false) => new([bytes], closeAfter);
}
