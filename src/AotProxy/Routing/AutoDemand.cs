using AotProxy.Configuration;

namespace AotProxy.Routing;

// What a model "auto" request needs of the model that serves it (AutoModel's filter).
internal readonly record struct AutoDemand(ModelCapabilities Needs, long PromptTokens, long CompletionTokens);
