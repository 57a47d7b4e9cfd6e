namespace AotProxy.Load.Reporting;

// From the responses' usage (streams ask for it with stream_options.include_usage).
internal sealed record TokenCounts(long Prompt, long Completion);
