using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AotProxy.Identity;
using AotProxy.Simulator;
using Microsoft.Extensions.Logging.Abstractions;
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

    private readonly TempDirectory _directory;

    private DashboardGateway(TempDirectory directory, List<SimulatedWorker> workers, GatewayProcess process, HeadlessChromium chromium)
    {
        _directory = directory;
        Workers = workers;
        Process = process;
        Chromium = chromium;
        Data = new HttpClient { BaseAddress = process.DataUri, Timeout = TimeSpan.FromSeconds(60) };
        Admin = new HttpClient { BaseAddress = process.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
        Admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
    }

    public List<SimulatedWorker> Workers { get; }

    public GatewayProcess Process { get; }

    public HeadlessChromium Chromium { get; }

    public HttpClient Data { get; }

    // With the admin token: the API is the independent witness of what a click did.
    public HttpClient Admin { get; }

    public string ConfigPath => System.IO.Path.Combine(_directory.Path, "aotproxy.toml");

    // 16 slots per worker: in flight reads "N/16" on the page.
    public static async Task<DashboardGateway> StartAsync()
    {
        var workers = new List<SimulatedWorker>();
        for (var i = 0; i < 2; i++)
        {
            workers.Add(await SimulatedWorker.StartAsync(
                new SimulatorOptions { Name = $"sim-{i}", Model = TestGateway.Model, MaxNumSeqs = 16 }, new IPEndPoint(IPAddress.Loopback, 0), NullLoggerFactory.Instance));
        }

        var directory = new TempDirectory();
        var config = System.IO.Path.Combine(directory.Path, "aotproxy.toml");
        await File.WriteAllTextAsync(config, Toml(workers));
        var process = GatewayProcess.Start("serve", "--config", config);
        await process.WaitForReadyAsync();
        return new DashboardGateway(directory, workers, process, await HeadlessChromium.LaunchAsync());
    }

    public string Toml() => Toml(Workers);

    // Opens /dashboard, which asks for a token (the events stream answered 401), and logs in with it.
    public async Task<IPage> OpenAsync(string token, int width = 1280, int height = 800)
    {
        var page = await Chromium.NewPageAsync(width, height, Wait);
        await page.GotoAsync(new Uri(Process.AdminUri!, "/dashboard").ToString());
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
        using var workers = JsonDocument.Parse(await Admin.GetStringAsync("/api/workers"));
        return Fleet.Named(workers.RootElement, worker).GetProperty("draining").GetBoolean();
    }

    // One non-streaming chat request through the data plane with a key: its status.
    public async Task<HttpStatusCode> ChatAsync(string key = TestGateway.Key)
    {
        using var response = await Data.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(false, maxTokens: 4), key));
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
        Data.Dispose();
        Admin.Dispose();
        await Process.DisposeAsync();
        foreach (var worker in Workers)
        {
            await worker.DisposeAsync();
        }

        _directory.Dispose();
    }

    private static string Toml(List<SimulatedWorker> workers) => TestGateway.Toml(workers, adminToken: AdminToken, extra: $"""

        [[admin_tokens]]
        id = "viewer"
        sha256 = "{ApiKeyIndex.HashKey(ReadToken)}"
        role = "read"

        """);
}
