using System.Collections.Immutable;
using System.Net;

namespace AotProxy.Configuration.Validation;

// [auth]: anonymous access and the trusted proxy's headers.
internal static class AuthRules
{
    public static AuthModel Validate(ValidationContext context, AuthConfig auth, ImmutableArray<ClassModel> classes)
    {
        context.Unknown("auth", auth.Unknown);
        if (auth.DefaultClass.Length > 0 && !classes.Any(c => string.Equals(c.Name, auth.DefaultClass, StringComparison.Ordinal)))
        {
            context.Error("auth.default_class", $"class \"{auth.DefaultClass}\" is not defined; the classes are {string.Join(", ", classes.Select(c => $"\"{c.Name}\""))} (\"\" turns anonymous access off)");
        }

        var sources = ImmutableArray.CreateBuilder<IPNetwork>(auth.TrustedSources.Count);
        for (var i = 0; i < auth.TrustedSources.Count; i++)
        {
            var text = auth.TrustedSources[i];
            if (TrustedNetwork.TryParse(text, out var network))
            {
                sources.Add(network);
            }
            else
            {
                context.Error($"auth.trusted_sources[{i}]", $"\"{text}\" is not a network: write a CIDR with its host bits zero (\"10.0.0.0/8\", \"fd00::/8\") or one address (\"10.0.0.7\")");
            }
        }

        if (auth.TrustedHeaders && auth.TrustedSources.Count == 0)
        {
            context.Error("auth.trusted_headers", "needs auth.trusted_sources, the networks of the proxy that sets x-tenant, x-customer-tier and x-priority; honoured from anywhere, they would let any client choose its tenant");
        }

        return new AuthModel(auth.DefaultClass, auth.TrustedHeaders, sources.ToImmutable());
    }
}
