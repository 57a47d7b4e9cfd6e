using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace AotProxy.Simulator;

internal static partial class SimulatorLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Simulated vLLM worker {Name} serving {Model} on {BaseUri}")]
    public static partial void WorkerStarted(ILogger logger, string name, string model, Uri baseUri);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Simulated vLLM worker {Name} stopped")]
    public static partial void WorkerStopped(ILogger logger, string name);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "Request {RequestId} aborted by the client after {Tokens} tokens")]
    public static partial void ClientAborted(ILogger logger, string requestId, int tokens);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "Fault injected on {Path}: {Fault}")]
    public static partial void FaultInjected(ILogger logger, PathString path, string fault);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Faults changed through the control endpoint from {Remote}")]
    public static partial void FaultsChanged(ILogger logger, IPAddress? remote);
}
