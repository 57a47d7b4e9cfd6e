using AotProxy.Http;

namespace AotProxy.Tests.Http;

public sealed class RequestIdsTests
{
    [Fact]
    public void NewId_Is32HexDigits_AndNeverRepeats()
    {
        var ids = Enumerable.Range(0, 10_000).Select(_ => RequestIds.NewId()).ToArray();

        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{32}$", id));
        Assert.Equal(ids.Length, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.Single(ids.Select(id => id[..16]).Distinct(StringComparer.Ordinal)); // one process prefix
    }

    [Fact]
    public void NewId_EndsInItsCounter_As16HexDigits_RisingFromOneIdToTheNext()
    {
        var ids = Enumerable.Range(0, 1_000).Select(_ => RequestIds.NewId()).ToArray();

        // Other tests may take ids meanwhile: the counter rises, not always by one.
        var counters = ids.Select(id => ulong.Parse(id[16..], System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.All(counters.Zip(counters.Skip(1)), pair => Assert.True(pair.Second > pair.First, $"{pair.First:x16} then {pair.Second:x16}"));
        Assert.All(ids, id => Assert.Equal(id[16..], ulong.Parse(id[16..], System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture).ToString("x16", System.Globalization.CultureInfo.InvariantCulture)));
    }
}
