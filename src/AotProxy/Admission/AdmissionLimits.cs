namespace AotProxy.Admission;

internal static class AdmissionLimits
{
    // Queue levels per model: scheduler.bucket_count's maximum (the priority policy uses 10).
    public const int MaxLevels = 100;
}
