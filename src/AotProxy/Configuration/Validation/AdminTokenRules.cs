using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [[admin_tokens]] beside server.admin_token_sha256 (an admin token with the id "default"): ids
// unique (the audit names them), hashes unique (a token must have one role), roles known.
internal static class AdminTokenRules
{
    public static ImmutableArray<AdminTokenModel> Validate(ValidationContext context, IReadOnlyList<AdminTokenConfig> tokens, ImmutableArray<byte> defaultToken)
    {
        var result = ImmutableArray.CreateBuilder<AdminTokenModel>(tokens.Count + 1);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!defaultToken.IsEmpty)
        {
            result.Add(new AdminTokenModel(AdminTokenModel.DefaultId, defaultToken, AdminRole.Admin));
        }

        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var at = $"admin_tokens[{i}]";
            context.Unknown(at, token.Unknown);
            if (token.Id == AdminTokenModel.DefaultId)
            {
                context.Error(new(at, "id"), $"\"{AdminTokenModel.DefaultId}\" is server.admin_token_sha256's id; choose another");
            }
            else
            {
                context.Name(new(at, "id"), token.Id, "admin token", ids, i, "admin_tokens");
            }

            var hash = context.Sha256(new(at, "sha256"), token.Sha256, allowEmpty: false);
            var role = token.Role switch
            {
                AdminTokenModel.ReadRoleName => AdminRole.Read,
                AdminTokenModel.AdminRoleName => AdminRole.Admin,
                _ => (AdminRole?)null,
            };
            if (role is null)
            {
                context.Error(new(at, "role"), $"must be \"{AdminTokenModel.ReadRoleName}\" (GET only) or \"{AdminTokenModel.AdminRoleName}\" (got \"{token.Role}\")");
            }

            if (hash.IsEmpty)
            {
                continue;
            }

            var twin = result.FirstOrDefault(t => t.Sha256.AsSpan().SequenceEqual(hash.AsSpan()));
            if (twin is not null)
            {
                context.Error(new(at, "sha256"), $"the same token hash is already admin token \"{twin.Id}\"'s; a token must have one id and one role");
                continue;
            }

            result.Add(new AdminTokenModel(token.Id, hash, role ?? AdminRole.Read));
        }

        return result.ToImmutable();
    }
}
