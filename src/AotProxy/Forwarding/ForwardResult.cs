using AotProxy.Accounting;

namespace AotProxy.Forwarding;

internal readonly record struct ForwardResult(
    ForwarderError Error,
    int StatusCode,          // what the client got (0: nothing was sent)
    Usage? Usage,            // null: the response carried none (error, non-JSON, cut short)
    TimeSpan? FirstByte);    // time from the upstream send to the first body byte reaching the client
