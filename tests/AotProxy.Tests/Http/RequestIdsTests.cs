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
}
