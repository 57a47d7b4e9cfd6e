namespace AotProxy.Admission;

internal static class AdmissionLimits
{
    // Queue levels per model: scheduler.bucket_count's maximum (the priority policy uses 10).
    public const int MaxLevels = 100;

    // Preemptible requests in flight per model that preemption can see (ModelAdmission.Register):
    // the table is scanned only while a more important class waits with no slot free.
    public const int PreemptibleCells = 4096;
}
