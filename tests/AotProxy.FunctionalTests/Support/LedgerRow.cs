namespace AotProxy.FunctionalTests.Support;

internal sealed record LedgerRow(string Tenant, string KeyId, string Model, string Worker, long Prompt, long Completion, bool Estimated, double QueueWaitMs, double? TtftMs, int Status, string Outcome, string RequestedModel);
