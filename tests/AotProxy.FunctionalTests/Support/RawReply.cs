namespace AotProxy.FunctionalTests.Support;

// What RawWorker sends for one request: the parts in order, then maybe a close. With
// BeforeLaterParts, every part after the first waits for that task (a test opens the gate once
// the client has seen what the first part caused).
internal sealed record RawReply(byte[][] Parts, bool CloseAfter = false, TimeSpan PauseBetweenParts = default, Task? BeforeLaterParts = null)
{
    public static RawReply Of(byte[] bytes, bool closeAfter = false) => new([bytes], closeAfter);
}
