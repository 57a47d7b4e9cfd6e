namespace AotProxy.Identity;

// A JSON Web Key Set file as written (RFC 7517 5): {"keys":[...]}.
internal sealed record JsonWebKeySet
{
    public IReadOnlyList<JsonWebKey?>? Keys { get; init; }
}
