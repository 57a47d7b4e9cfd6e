namespace AotProxy.FunctionalTests.Support;

internal sealed record OtlpEvent(string Name, IReadOnlyDictionary<string, object> Attributes);
