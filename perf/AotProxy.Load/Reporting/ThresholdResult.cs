namespace AotProxy.Load.Reporting;

// Limit and Actual in the unit the name ends with (µs, or a fraction for error_rate).
internal sealed record ThresholdResult(string Name, double Limit, double Actual, bool Passed);
