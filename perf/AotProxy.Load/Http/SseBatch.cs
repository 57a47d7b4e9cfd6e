namespace AotProxy.Load.Http;

// What one read completed: data events (without [DONE]) and, of those, events carrying text.
internal readonly record struct SseBatch(int DataEvents, int ContentEvents);
