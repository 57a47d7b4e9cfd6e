using Tomlyn.Serialization;

namespace AotProxy.Configuration;

// One [[admin_tokens]] entry: a token of the admin API with a name (the audit's actor) and a role.
internal sealed record AdminTokenConfig
{
    // What the audit writes as the actor; "default" is server.admin_token_sha256's.
    public string Id { get; init; } = "";

    // Hex SHA-256 of the token (`aotproxy hash-key TOKEN`): the file never holds a usable secret.
    public string Sha256 { get; init; } = "";

    // "read": GET only. "admin": every method (tenants, keys, drains, reloads).
    public string Role { get; init; } = AdminTokenModel.AdminRoleName;

    [TomlExtensionData]
    public Dictionary<string, object?>? Unknown { get; init; }
}
