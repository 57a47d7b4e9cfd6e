using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using AotProxy.Admin.Dashboard;

namespace AotProxy.Tests.Admin;

public partial class DashboardPageTests
{
    private static readonly DashboardPage Page = DashboardPage.Load();

    private static string Html => Encoding.UTF8.GetString(Page.Html);

    [Fact]
    public void Page_IsSmall_AndTheGzipCopyHoldsTheSameBytes()
    {
        Assert.InRange(Page.Html.Length, 1_000, 50 * 1024);
        using var gzip = new GZipStream(new MemoryStream(Page.Gzipped), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        gzip.CopyTo(raw);
        Assert.Equal(Page.Html, raw.ToArray());
        Assert.True(Page.Gzipped.Length < Page.Html.Length / 2);
    }

    // No CDN, font, image or script from anywhere else: every src=, href=, action=, url( and literal
    // fetch("...") names this origin (a path starting with one "/", a fragment) or nothing.
    [Fact]
    public void Page_ReferencesNothingOutsideItsOrigin()
    {
        var html = Html;
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        var references = Reference().Matches(html).Select(m => m.Groups["target"].Value).ToArray();
        Assert.Contains("/api/events", references);
        foreach (var target in references)
        {
            Assert.False(target.StartsWith("//", StringComparison.Ordinal), target);
            Assert.True(target.Length == 0 || target[0] is '/' or '#', $"'{target}' is not a same-origin path");
        }

        Assert.DoesNotMatch(ImportStatement(), html);
        Assert.DoesNotContain("document.cookie", html, StringComparison.Ordinal);
    }

    // The ids and attributes browser18's test drives (notes/dashboard-contract.md).
    [Theory]
    [InlineData("id=\"login\"")]
    [InlineData("id=\"token\" type=\"password\"")]
    [InlineData("id=\"login-submit\"")]
    [InlineData("id=\"connection\"")]
    [InlineData("id=\"total-requests\"")]
    [InlineData("id=\"active-requests\"")]
    [InlineData("id=\"workers\"")]
    [InlineData("id=\"admission\"")]
    [InlineData("id=\"fair-share\"")]
    [InlineData("id=\"tenants\"")]
    [InlineData("id=\"usage\"")]
    [InlineData("id=\"config-revision\"")]
    [InlineData("id=\"reload\"")]
    [InlineData("id=\"reload-result\"")]
    [InlineData("id=\"errors\"")]
    [InlineData("id=\"create-tenant\"")]
    [InlineData("id=\"new-key\"")]
    [InlineData("id=\"action-error\"")]
    [InlineData("sessionStorage")]
    [InlineData("\"Bearer \"")]
    public void Page_CarriesTheContractsHooks(string hook) => Assert.Contains(hook, Html, StringComparison.Ordinal);

    [GeneratedRegex("""(?:(?<![\w-])(?:src|href|action)\s*=\s*(?!=)["']?|url\(\s*["']?|fetch\(\s*["'])(?<target>[^"')\s>]*)""", RegexOptions.IgnoreCase)]
    private static partial Regex Reference();

    [GeneratedRegex("""(^|[;\s])import\s*[\(\s"'{*]""")]
    private static partial Regex ImportStatement();
}
