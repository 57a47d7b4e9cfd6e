using Microsoft.Playwright;

namespace AotProxy.FunctionalTests.Support;

// Debian's chromium (tests/run.sh installs it) driven by the Microsoft.Playwright package's own
// bundled driver: nothing is downloaded, and no node is needed beside the one in the package.
internal sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";

    // Without the background-networking flags, chromium keeps dialing Google's hosts, which this
    // closed network refuses (and a loaded CI machine pays for). Playwright adds --headless and a
    // fresh --user-data-dir per launch itself.
    private static readonly string[] Flags =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
    ];

    private readonly IPlaywright _playwright;

    private HeadlessChromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public IBrowser Browser { get; }

    public static async Task<HeadlessChromium> LaunchAsync()
    {
        Assert.True(File.Exists(Executable), $"{Executable} is missing: tests/run.sh installs Debian's chromium");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Executable, Headless = true, Args = Flags, Timeout = 60_000 });
            return new HeadlessChromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    // A page of its own (own cookies and sessionStorage) at a viewport size; every Playwright wait
    // on it is bounded by `timeout`, generous for a loaded 2-core CI machine.
    public async Task<IPage> NewPageAsync(int width, int height, TimeSpan timeout)
    {
        var context = await Browser.NewContextAsync(new() { ViewportSize = new() { Width = width, Height = height } });
        context.SetDefaultTimeout((float)timeout.TotalMilliseconds);
        // Expect(...) assertions have their own default (5 s), kept in one static of Playwright's.
        Assertions.SetDefaultExpectTimeout((float)timeout.TotalMilliseconds);
        var page = await context.NewPageAsync();
        // A confirm() before a destructive action is answered yes, as the operator would;
        // Playwright's default answer is no.
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}
