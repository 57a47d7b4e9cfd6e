using Microsoft.Extensions.Logging;

namespace AotProxy.Http;

internal static partial class HttpLog
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "Request {RequestId}: worker {Worker} failed ({Error})")]
    public static partial void UpstreamFailed(ILogger logger, string requestId, string worker, string error);

    [LoggerMessage(EventId = 302, Level = LogLevel.Information, Message = "Request {RequestId}: worker {Worker} failed ({Error}) before answering; attempt {Attempt} goes to another worker")]
    public static partial void Retrying(ILogger logger, string requestId, string worker, AotProxy.Forwarding.ForwarderError error, int attempt);

    // At most one a second (IdentityStage's LogThrottle): a client with a wrong key or an expired
    // token would otherwise flood the log. Bounded: the request id is at most 128 chars (RequestIds).
    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "Request {RequestId}: not identified ({Failure}); {Suppressed} more not logged since the previous such line")]
    public static partial void Unidentified(ILogger logger, string requestId, AotProxy.Identity.IdentifyFailure failure, long suppressed);

    [LoggerMessage(EventId = 301, Level = LogLevel.Error, Message = "Request {RequestId}: unexpected failure")]
    public static partial void Unexpected(ILogger logger, string requestId, Exception exception);
}
