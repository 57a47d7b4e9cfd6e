namespace AotProxy.Configuration;

internal sealed record RetryModel(int MaxAttempts, TimeSpan BackoffBase, TimeSpan BackoffMax, double BudgetRatio);
