namespace AotProxy.Tests.Support;

// One request as LoopbackTcpServer read it: its number on the server and on its connection
// (both from 1), the head up to its blank line, and the Content-Length body.
internal sealed record LoopbackRequest(int Number, int Connection, int OnConnection, string Head, byte[] Body);
