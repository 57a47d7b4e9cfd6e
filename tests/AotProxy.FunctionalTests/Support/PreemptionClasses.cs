using AotProxy.Identity;

namespace AotProxy.FunctionalTests.Support;

// The preemption tests' classes: acme's (default) preemptible at priority 2, and tenant vip of
// class enterprise (priority 0) with VipKey, which may preempt it.
internal static class PreemptionClasses
{
    public const string VipKey = "sk-test-vip-preempt";

    public static readonly string Toml = $"""

        [[classes]]
        name = "default"
        priority = 2
        preemptible = true

        [[classes]]
        name = "enterprise"
        priority = 0

        [[tenants]]
        name = "vip"
        class = "enterprise"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(VipKey)}"]
        """;
}
