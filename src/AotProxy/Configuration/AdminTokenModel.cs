using System.Collections.Immutable;

namespace AotProxy.Configuration;

// An admin token: its id (the audit's actor), its SHA-256 (32 bytes) and its role.
internal sealed record AdminTokenModel(string Id, ImmutableArray<byte> Sha256, AdminRole Role)
{
    public const string DefaultId = "default";
    public const string ReadRoleName = "read";
    public const string AdminRoleName = "admin";

    // The actor of a change made while no admin token is configured (the API is open).
    public const string OpenActor = "anonymous";
}
