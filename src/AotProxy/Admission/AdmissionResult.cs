namespace AotProxy.Admission;

// The result of admission: a lease on a slot (Admitted, Granted), or a refusal with the
// Retry-After the client should get.
internal readonly record struct AdmissionResult(AdmissionDecision Decision, AdmissionLease Lease, int RetryAfterSeconds, TimeSpan Waited)
{
    public bool IsAdmitted => Decision is AdmissionDecision.Admitted or AdmissionDecision.Granted;

    public static AdmissionResult Refused(AdmissionDecision decision, int retryAfterSeconds, TimeSpan waited = default) =>
        new(decision, default, retryAfterSeconds, waited);
}
