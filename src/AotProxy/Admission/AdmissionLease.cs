using AotProxy.Accounting;

namespace AotProxy.Admission;

// One admitted request's slot. The handler releases it exactly once, in a finally: completion,
// upstream error and client abort all go through that one call. Usage, when the response
// reported it, settles the fair-share charge (admission charged the prompt estimate).
internal readonly struct AdmissionLease(ModelAdmission model, FairShareAccount tenant, FairShareAccount classAccount, int slotBucket, GrantCharge charge, long grantedAt)
{
    public bool IsHeld => model is not null;

    public void Release(Usage? usage) => model?.Release(tenant, classAccount, slotBucket, charge, usage, grantedAt);
}
