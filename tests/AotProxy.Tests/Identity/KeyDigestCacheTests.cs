using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;
using AotProxy.Configuration;
using AotProxy.Hosting;
using AotProxy.Identity;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace AotProxy.Tests.Identity;

// The key's SHA-256 once per Authorization string instance: what Kestrel does with the header on
// a keep-alive connection (the premise), and that a digest found again changes no decision.
public sealed class KeyDigestCacheTests
{
    [Fact]
    public void Of_TheSameHeaderInstance_IsHashedOnce_AnEqualCopyAgain()
    {
        var cache = new KeyDigestCache();
        var header = "Bearer sk-cached";
        var copy = new string(header.AsSpan());

        var digest = cache.Of(header);

        Assert.Equal(SHA256.HashData("sk-cached"u8), digest);
        Assert.Same(digest, cache.Of(header));
        var again = cache.Of(copy);
        Assert.NotSame(digest, again);
        Assert.Equal(digest, again);
        Assert.Equal(SHA256.HashData("sk-other"u8), cache.Of("bearer   sk-other  "));
    }

    // The premise (KestrelServerOptions.DisableStringReuse, false by default): on one connection a
    // repeated Authorization comes as the same string instance; a changed one as a new string.
    [Fact]
    public async Task Kestrel_GivesAKeepAliveConnectionsNextRequest_TheSameAuthorizationInstance()
    {
        var seen = new ConcurrentQueue<string>();
        await using var listener = await KestrelListener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), context =>
        {
            seen.Enqueue(context.Request.Headers.Authorization[0]!);
            context.Response.ContentLength = 0;
            return Task.CompletedTask;
        }, NullLoggerFactory.Instance);
        using var client = await KeepAliveClient.ConnectAsync(listener.EndPoint);

        foreach (var key in new[] { "sk-one", "sk-one", "sk-two" })
        {
            await client.SendAsync(KeepAliveClient.Post("/v1/chat/completions", "{}", $"Authorization: Bearer {key}\r\n"));
            Assert.Equal(200, (await client.ReadResponseAsync()).Status);
        }

        var headers = seen.ToArray();
        Assert.Equal(["Bearer sk-one", "Bearer sk-one", "Bearer sk-two"], headers);
        Assert.Same(headers[0], headers[1]);
        var cache = new KeyDigestCache();
        Assert.Same(cache.Of(headers[0]), cache.Of(headers[1]));
    }

    // A digest found again is only the hash: the key's end, its window and its revocation (a new
    // snapshot's index without it) still decide, on the same header instance.
    [Fact]
    public void Identify_TheSameHeaderInstanceAgain_StillEndsExpiresAndRevokes()
    {
        var acme = new TenantModel("acme", ClassModel.DefaultName, 1, [], ["*"], 0, 0, 0);
        var start = new DateTimeOffset(2026, 11, 22, 9, 30, 0, TimeSpan.Zero);
        var issued = new IssuedKey("k1", [.. SHA256.HashData("sk-issued"u8)], "acme", start.AddHours(1).ToUnixTimeMilliseconds(), new KeyWindow(9 * 60, 10 * 60), new KeyUse(0));
        var clock = new FakeTimeProvider(start);
        var context = new DefaultHttpContext();
        context.Request.Headers.Authorization = "Bearer sk-issued";
        var wrong = new DefaultHttpContext();
        wrong.Request.Headers.Authorization = "Bearer sk-wrong";
        var resolver = Resolver(new ApiKeyIndex([acme], [issued]));

        var first = resolver.Identify(context, clock);
        Assert.True(first.IsIdentified);
        Assert.Equal(("acme", IdentitySource.ApiKey, "k1"), (first.Caller.Tenant.Name, first.Caller.Source, first.Caller.KeyId));
        Assert.True(resolver.Identify(context, clock).IsIdentified);
        Assert.Equal(IdentifyFailure.InvalidApiKey, resolver.Identify(wrong, clock).Failure);
        Assert.Equal(IdentifyFailure.InvalidApiKey, resolver.Identify(wrong, clock).Failure);

        clock.Advance(TimeSpan.FromMinutes(30)); // 10:00: outside its 09:00-10:00 window
        Assert.Equal(IdentifyFailure.OutsideKeyWindow, resolver.Identify(context, clock).Failure);
        clock.Advance(TimeSpan.FromMinutes(30)); // its end
        Assert.Equal(IdentifyFailure.ExpiredApiKey, resolver.Identify(context, clock).Failure);

        var before = new FakeTimeProvider(start);
        Assert.True(resolver.Identify(context, before).IsIdentified);
        var revoked = Resolver(new ApiKeyIndex([acme]));
        Assert.Equal(IdentifyFailure.InvalidApiKey, revoked.Identify(context, before).Failure);
    }

    private static CallerResolver Resolver(ApiKeyIndex keys) =>
        new(keys, new Dictionary<string, TenantModel>().ToFrozenDictionary(), new Dictionary<string, ClassModel>().ToFrozenDictionary(), AuthModel.Off, null);
}
