namespace AotProxy.Routing;

internal enum PickOutcome : byte
{
    Picked,
    UnknownModel,     // 404 model_not_found
    NoRoutableWorker, // 503 overloaded: the model exists, but every worker is draining or gone
}
