using AotProxy.Routing;

namespace AotProxy.Admission;

// The result of admission: a lease on a slot (Admitted, Granted) with the worker slot behind it,
// which the request then owns and gives back (WorkerSlot); or a refusal with the Retry-After the
// client should get, the queue position it had (0: never queued) and the model's grant rate
// (grants/s over 10 s) both were computed from (and, shed, why).
internal readonly record struct AdmissionResult(
    AdmissionDecision Decision, AdmissionLease Lease, int RetryAfterSeconds, TimeSpan Waited, WorkerSlot Slot = default, int QueuePosition = 0, double GrantRate = 0, ShedReason? Shed = null)
{
    public bool IsAdmitted => Decision is AdmissionDecision.Admitted or AdmissionDecision.Granted;

    public static AdmissionResult Refused(AdmissionDecision decision, int retryAfterSeconds, double grantRate, int queuePosition = 0, TimeSpan waited = default, ShedReason? shed = null) =>
        new(decision, default, retryAfterSeconds, waited, default, queuePosition, grantRate, shed);
}
