using AotProxy.Routing;

namespace AotProxy.Admission;

// The result of admission: a lease on a slot (Admitted, Granted) with the worker slot behind it,
// which the request then owns and gives back (WorkerSlot); or a refusal with the Retry-After the
// client should get (and, shed, why).
internal readonly record struct AdmissionResult(AdmissionDecision Decision, AdmissionLease Lease, int RetryAfterSeconds, TimeSpan Waited, WorkerSlot Slot = default, ShedReason? Shed = null)
{
    public bool IsAdmitted => Decision is AdmissionDecision.Admitted or AdmissionDecision.Granted;

    public static AdmissionResult Refused(AdmissionDecision decision, int retryAfterSeconds, TimeSpan waited = default, ShedReason? shed = null) =>
        new(decision, default, retryAfterSeconds, waited, Shed: shed);
}
