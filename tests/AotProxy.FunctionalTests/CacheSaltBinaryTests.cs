using System.Net;
using AotProxy.Configuration;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;

namespace AotProxy.FunctionalTests;

// Issue 20's prefix-cache isolation through the real binary: tenants with cache_salt get vLLM's
// `cache_salt` set to their own salt, replacing the client's, so a simulated worker (which mixes
// cache_salt into its first block's hash, as vLLM does) never serves one tenant's prompt from
// another's cached blocks; a tenant without the key still shares the cache as before.
public class CacheSaltBinaryTests
{
    private const string RedKey = "sk-test-red";
    private const string BlueKey = "sk-test-blue";

    private static readonly string System = string.Concat(Enumerable.Range(0, 200).Select(i => $"Rule {i:D3}: be brief. "));

    [Fact]
    public async Task SaltedTenants_ShareNoCachedPrefix_ClientSaltIsReplaced_UnsaltedStillShares()
    {
        await using var gateway = await BinaryGateway.StartAsync(workers: 1, extraToml: $"""

            [[tenants]]
            name = "red"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(RedKey)}"]
            cache_salt = true

            [[tenants]]
            name = "blue"
            api_key_sha256 = ["{ApiKeyIndex.HashKey(BlueKey)}"]
            cache_salt = true
            """);
        var stats = gateway.Workers[0].Stats;
        var redSalt = new TenantCacheSalt("red").Hex;

        // red's client names its own salt: the gateway replaces it with red's.
        await SendAsync(gateway, RedKey, ",\"cache_salt\":\"mine\"");
        var afterFirst = stats.PrefixCacheHits;

        // blue's client claims red's salt: replaced with blue's, so nothing of red's cache is hit.
        await SendAsync(gateway, BlueKey, $",\"cache_salt\":\"{redSalt}\"");
        Assert.Equal(afterFirst, stats.PrefixCacheHits);

        // red again, without a salt of its own: the gateway's salt is the one its first request was
        // cached under (had "mine" gone upstream, this would miss).
        await SendAsync(gateway, RedKey, "");
        var afterRed = stats.PrefixCacheHits;
        Assert.True(afterRed - afterFirst >= 900, $"red's second request hit {afterRed - afterFirst} tokens");

        // A value vLLM would refuse (a number: 400) never reaches the worker either.
        await SendAsync(gateway, RedKey, ",\"cache_salt\":42");
        Assert.True(stats.PrefixCacheHits > afterRed);

        // acme has no cache_salt: its first request hits none of the salted blocks, its second its own.
        var beforeAcme = stats.PrefixCacheHits;
        await SendAsync(gateway, TestGateway.Key, "");
        Assert.Equal(beforeAcme, stats.PrefixCacheHits);
        await SendAsync(gateway, TestGateway.Key, "");
        Assert.True(stats.PrefixCacheHits - beforeAcme >= 900, $"acme's second request hit {stats.PrefixCacheHits - beforeAcme} tokens");
    }

    // A ~1,000-token system prompt, the same for every tenant; extra: more body keys.
    private static async Task SendAsync(BinaryGateway gateway, string key, string extra)
    {
        var body = $$"""{"model":"{{TestGateway.Model}}","max_tokens":2,"messages":[{"role":"system","content":"{{System}}"},{"role":"user","content":"Hi?"}]{{extra}}}""";
        using var response = await gateway.Data.SendAsync(TestGateway.Post("v1/chat/completions", body, key));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
    }
}
