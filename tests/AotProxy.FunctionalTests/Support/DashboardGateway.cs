using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AotProxy.Identity;
using Microsoft.Playwright;

namespace AotProxy.FunctionalTests.Support;

// The real executable (the AOT binary in CI) in front of two simulated workers, with an admin
// token and a read-only one, and headless chromium to open its /dashboard. The selectors are the
// DOM contract the page keeps (ids, data-worker/data-field/data-action attributes).
internal sealed class DashboardGateway : IAsyncDisposable
{
    public const string AdminToken = "admin-secret-18";
    public const string ReadToken = "viewer-secret-18";

    // Every wait on the page or the API: a condition, bounded, generous for a loaded 2-core CI
    // machine (the page updates at least once a second).
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private DashboardGateway(BinaryGateway binary, HeadlessChromium chromium)
    {
        Binary = binary;
        Chromium = chromium;
    }

    // Its Admin client carries the admin token: the API is the independent witness of what a
    // click did.
    public BinaryGateway Binary { get; }

    public HeadlessChromium Chromium { get; }

    // 16 slots per worker: in flight reads "N/16" on the page.
    public static async Task<DashboardGateway> StartAsync()
    {
        var binary = await BinaryGateway.StartAsync(workers: 2, AdminToken, $"""

            [[admin_tokens]]
            id = "viewer"
            sha256 = "{ApiKeyIndex.HashKey(ReadToken)}"
            role = "read"

            """, o => o.MaxNumSeqs = 16);
        binary.Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return new DashboardGateway(binary, await HeadlessChromium.LaunchAsync());
    }

    // Opens /dashboard, which asks for a token (the events stream answered 401), and logs in with it.
    public async Task<IPage> OpenAsync(string token, int width = 1280, int height = 800)
    {
        var page = await Chromium.NewPageAsync(width, height, Wait);
        await page.GotoAsync(new Uri(Binary.Process.AdminUri!, "/dashboard").ToString());
        await Assertions.Expect(page.Locator("#login")).ToBeVisibleAsync();
        Assert.NotEqual("live", await page.Locator("#connection").TextContentAsync());

        await page.Locator("#token").FillAsync(token);
        await page.Locator("#login-submit").ClickAsync();
        await ExpectTextAsync(page.Locator("#connection"), "live");
        await Assertions.Expect(page.Locator("#login")).ToBeHiddenAsync();
        await Assertions.Expect(Cell(page, "sim-0", "requests")).ToBeVisibleAsync();
        return page;
    }

    public static ILocator Row(IPage page, string worker) => page.Locator($"#workers tr[data-worker=\"{worker}\"]");

    public static ILocator Cell(IPage page, string worker, string field) => Row(page, worker).Locator($"td[data-field=\"{field}\"]");

    public static Task ExpectTextAsync(ILocator locator, string text) =>
        Assertions.Expect(locator).ToHaveTextAsync(text);

    public static async Task<long> NumberAsync(ILocator locator)
    {
        var text = (await locator.TextContentAsync())?.Trim();
        Assert.True(long.TryParse(text, out var number), $"'{text}' is not an integer");
        return number;
    }

    // Waits until the element's text is a number above `floor` (the page's own update, not a reload).
    public static async Task WaitAboveAsync(IPage page, string selector, long floor) =>
        await page.WaitForFunctionAsync(
            "([selector, floor]) => Number(document.querySelector(selector)?.textContent) > floor",
            new object[] { selector, floor });

    public async Task<bool> DrainingAsync(string worker)
    {
        using var workers = JsonDocument.Parse(await Binary.Admin.GetStringAsync("/api/workers"));
        return Fleet.Named(workers.RootElement, worker).GetProperty("draining").GetBoolean();
    }

    // One non-streaming chat request through the data plane with a key: its status.
    public async Task<HttpStatusCode> ChatAsync(string key = TestGateway.Key)
    {
        using var response = await Binary.Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key));
        return response.StatusCode;
    }

    // A screenshot under the repository's artifacts/ (CI keeps that folder).
    public static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        var path = System.IO.Path.Combine(Fixtures.RepoRoot, "artifacts", name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        await page.ScreenshotAsync(new() { Path = path });
        Assert.True(new FileInfo(path).Length > 0, path);
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        await Chromium.DisposeAsync();
        await Binary.DisposeAsync();
    }
}
