using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Gateway;
using AotProxy.Limits;

namespace AotProxy.Tests.Gateway;

public class GatewayTelemetryTests
{
    // What the stages call on every request costs no allocation once the request's series exist:
    // prometheus-net's WithLabels allocates per call, so each stage's telemetry keeps its children.
    [Fact]
    public void RequestPathTelemetry_AllocatesNothing_OnceItsSeriesExist()
    {
        var telemetry = new GatewayTelemetry();
        var usage = new Usage(120, 30, CachedPromptTokens: 64, ReasoningTokens: 8);
        void OneRequest()
        {
            telemetry.Limits.CountCheck("acme");
            telemetry.Limits.CountRefusal("acme", LimitRefusal.Requests);
            telemetry.Admission.CountDecision("interactive", AdmissionDecision.Granted);
            telemetry.Admission.ObserveQueueWait("interactive", TimeSpan.FromMilliseconds(3));
            telemetry.Pacing.ObserveWait("sim-0", TimeSpan.FromMilliseconds(5));
            telemetry.Forwarding.OnAttemptStart();
            telemetry.Forwarding.OnAttemptEnd();
            telemetry.Forwarding.CountRetry("sim-0");
            telemetry.Usage.CountUsage("acme", usage);
            telemetry.Requests.ObserveLatency("m", TimeSpan.FromMilliseconds(40));
            telemetry.Requests.ObserveTtft("m", "interactive", TimeSpan.FromMilliseconds(7));
            telemetry.Requests.ObserveOverhead("m", TimeSpan.FromTicks(1830));
            telemetry.Requests.CountRequest("m", "interactive", 200);
        }

        for (var i = 0; i < 100; i++)
        {
            OneRequest(); // the series, their cached children, and what prometheus-net sets up lazily
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            OneRequest();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
