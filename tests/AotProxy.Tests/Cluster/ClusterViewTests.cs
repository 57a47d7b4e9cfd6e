using AotProxy.Cluster;

namespace AotProxy.Tests.Cluster;

public sealed class ClusterViewTests
{
    [Theory]
    [InlineData("aaa,aaa,bbb", "aaa", "bbb")]
    [InlineData("aaa,bbb", null, "aaa,bbb")]
    [InlineData("aaa,bbb,ccc", null, "aaa,bbb,ccc")]
    [InlineData("aaa", "aaa", "")]
    [InlineData("aaa,bbb,bbb,ccc", "bbb", "aaa,ccc")]
    public void TheMajorityDigest_FlagsEveryOtherMember(string digests, string? majority, string flagged)
    {
        var members = digests.Split(',').Select((d, i) => Member($"r{i}", d)).ToArray();
        var view = new ClusterView(true, null, null, TimeSpan.Zero, 0, [.. members], DateTimeOffset.UnixEpoch);

        Assert.Equal(majority, view.MajorityDigest);
        var expected = flagged.Split(',', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(expected, members.Where(view.Differs).Select(m => m.Digest).Distinct());
    }

    [Fact]
    public void AMemberRecord_SurvivesTheRoundTripThroughItsHash()
    {
        var member = Member("gw-1", "abc123") with { InFlight = 17, StoreLatency = TimeSpan.FromMicroseconds(250) };

        var read = ClusterMember.FromHash(member.ToHash(), TimeSpan.FromSeconds(4));

        Assert.Equal(member with { ExpiresIn = TimeSpan.FromSeconds(4) }, read);
    }

    [Fact]
    public void AnExpiredRecord_IsNoMember() => Assert.Null(ClusterMember.FromHash([], null));

    private static ClusterMember Member(string name, string digest) => new(
        name, "inst", "1.0", digest, 3, 0, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000), DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_005_000), TimeSpan.Zero, TimeSpan.Zero);
}
