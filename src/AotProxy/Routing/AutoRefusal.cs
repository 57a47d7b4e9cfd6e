namespace AotProxy.Routing;

// Why model "auto" found no model.
internal enum AutoRefusal : byte
{
    None,
    NothingFits, // no model the tenant may use can do what the request needs, or its context is too short: 400
    NoCapacity,  // some fit, none is healthy with a free slot now: 503, a retry may find one
}
