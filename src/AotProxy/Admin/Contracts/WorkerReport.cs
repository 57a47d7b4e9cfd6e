namespace AotProxy.Admin.Contracts;

internal sealed record WorkerReport(string Name, string Url, string[] Models, bool ModelsDiscovered, bool Draining, int InFlight, int MaxConcurrency, int Weight, long Requests);
