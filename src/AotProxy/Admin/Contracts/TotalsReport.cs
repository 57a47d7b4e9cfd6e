namespace AotProxy.Admin.Contracts;

internal sealed record TotalsReport(long ActiveRequests, long PromptTokens, long CompletionTokens, int Workers, int RoutableWorkers);
