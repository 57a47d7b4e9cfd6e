using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text;
using AotProxy.Configuration;
using AotProxy.Identity;

namespace AotProxy.Tests.Identity;

public class ApiKeyIndexTests
{
    [Fact]
    public void Find_KnownKeys_ReturnTheirTenantAndUnknownKeysNothing()
    {
        var acme = Tenant("acme", "sk-acme-1", "sk-acme-2");
        var beta = Tenant("beta", "sk-beta");
        var index = new ApiKeyIndex([acme, beta]);

        Assert.Same(acme, index.Find("sk-acme-1"));
        Assert.Same(acme, index.Find("sk-acme-2"));
        Assert.Same(beta, index.Find("sk-beta"));
        Assert.Null(index.Find("sk-acme-3"));
        Assert.Null(index.Find(""));
        Assert.Null(index.Find(new string('x', 5000)));
    }

    [Theory]
    [InlineData("Bearer sk-1", "sk-1")]
    [InlineData("bearer   sk-1  ", "sk-1")]
    [InlineData("Basic abc", "")]
    [InlineData("Bearer ", "")]
    [InlineData("sk-1", "")]
    public void BearerToken_ExtractsTheKey(string header, string expected)
    {
        Assert.Equal(expected, ApiKeyIndex.BearerToken(header).ToString());
    }

    [Fact]
    public void HashKey_IsLowerHexSha256()
    {
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData("sk-demo-key"u8)), ApiKeyIndex.HashKey("sk-demo-key"));
        Assert.Equal(64, ApiKeyIndex.HashKey("x").Length);
    }

    [Fact]
    public void Find_AnIssuedKey_HoldsUntilItsEnd_OnlyInItsWindow_AndNotesItsLastUseOncePerSecond()
    {
        var acme = Tenant("acme");
        var start = new DateTimeOffset(2026, 11, 22, 9, 30, 0, TimeSpan.Zero);
        var use = new KeyUse(0);
        var issued = new IssuedKey("k1", [.. SHA256.HashData("sk-issued"u8)], "acme", start.AddHours(1).ToUnixTimeMilliseconds(), new KeyWindow(9 * 60, 10 * 60), use);
        var index = new ApiKeyIndex([acme], [issued]);
        var clock = new FakeTimeProvider(start);

        Assert.Same(acme, index.Find("sk-issued", clock, out var keyId, out var failure));
        Assert.Equal(("k1", IdentifyFailure.None, start.ToUnixTimeSeconds()), (keyId, failure, use.LastUsedSecond));
        Assert.Equal(start.ToUnixTimeSeconds(), use.TakeUnflushed());
        Assert.Equal(0, use.TakeUnflushed()); // nothing new since

        clock.Advance(TimeSpan.FromMinutes(30)); // 10:00: outside 09:00-10:00, before its end
        Assert.Null(index.Find("sk-issued", clock, out keyId, out failure));
        Assert.Equal(("", IdentifyFailure.OutsideKeyWindow), (keyId, failure));

        clock.Advance(TimeSpan.FromDays(1) - TimeSpan.FromMinutes(30)); // 09:30 the next day: in the window, past its end
        Assert.Null(index.Find("sk-issued", clock, out _, out failure));
        Assert.Equal(IdentifyFailure.ExpiredApiKey, failure);
        Assert.Equal(0, use.TakeUnflushed()); // refused uses are no use
    }

    [Fact]
    public void Find_AnIssuedKeyOfATenantNotInTheSnapshot_IsUnknown()
    {
        var issued = new IssuedKey("k1", [.. SHA256.HashData("sk-orphan"u8)], "gone", long.MaxValue, KeyWindow.Always, new KeyUse(0));
        var index = new ApiKeyIndex([Tenant("acme")], [issued]);

        Assert.Null(index.Find("sk-orphan", TimeProvider.System, out _, out var failure));
        Assert.Equal(IdentifyFailure.InvalidApiKey, failure);
    }

    [Fact]
    public void Find_AnIssuedKey_AllocatesNothing()
    {
        var use = new KeyUse(0);
        var index = new ApiKeyIndex([Tenant("acme", "sk-file")], [new IssuedKey("k1", [.. SHA256.HashData("sk-issued"u8)], "acme", long.MaxValue, new KeyWindow(0, 1439), use)]);
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 9, 30, 0, TimeSpan.Zero));
        index.Find("sk-issued", clock, out _, out _);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            index.Find("sk-issued", clock, out _, out _);
            index.Find("sk-file", clock, out _, out _);
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData("09:00-17:00", 540, 1020)]
    [InlineData("22:00-06:00", 1320, 360)]
    [InlineData("00:00-24:00", 0, 0)]
    [InlineData("", 0, 0)]
    public void KeyWindow_Parses(string text, int start, int end)
    {
        Assert.True(KeyWindow.TryParse(text, out var window));
        Assert.Equal(new KeyWindow((short)start, (short)end), window);
    }

    [Theory]
    [InlineData("9-17")]
    [InlineData("09:00-09:00")]
    [InlineData("25:00-01:00")]
    [InlineData("09:60-10:00")]
    [InlineData("09:00")]
    public void KeyWindow_RefusesWhatIsNotAWindow(string text)
    {
        Assert.False(KeyWindow.TryParse(text, out _));
    }

    [Fact]
    public void KeyWindow_AcrossMidnight_ContainsLateAndEarly()
    {
        var window = new KeyWindow(22 * 60, 6 * 60);
        var day = new DateTimeOffset(2026, 11, 22, 0, 0, 0, TimeSpan.Zero);

        Assert.True(window.Contains(day.AddHours(23).ToUnixTimeMilliseconds()));
        Assert.True(window.Contains(day.AddHours(5).ToUnixTimeMilliseconds()));
        Assert.False(window.Contains(day.AddHours(6).ToUnixTimeMilliseconds()));
        Assert.False(window.Contains(day.AddHours(12).ToUnixTimeMilliseconds()));
    }

    internal static TenantModel Tenant(string name, params string[] keys) => new(
        name,
        "default",
        1,
        [.. keys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k)).ToImmutableArray())],
        ["*"],
        0,
        0,
        0);
}
