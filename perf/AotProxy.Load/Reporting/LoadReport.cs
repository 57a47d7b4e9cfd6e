namespace AotProxy.Load.Reporting;

// The JSON report (DIR/<profile>.json), snake_case through ReportJsonContext. Scenarios[0] is the
// whole run; with more than one [[mix]] entry, one entry per mix follows ("<scenario>/<mix>").
internal sealed record LoadReport(
    string Profile,
    string Target,
    DateTimeOffset StartedAt,
    double DurationS,
    IReadOnlyList<ScenarioReport> Scenarios,
    bool Passed);
