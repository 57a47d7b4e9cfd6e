namespace AotProxy.Load.Recording;

// Percentiles in microseconds, as the report prints them.
internal sealed record HistogramSummary(long P50, long P90, long P99, long P999, long Max, double Mean, long Count);
