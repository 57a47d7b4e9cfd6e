using System.Net;
using AotProxy.FunctionalTests.Support;
using Microsoft.Playwright;
using static AotProxy.FunctionalTests.Support.DashboardGateway;

namespace AotProxy.FunctionalTests;

// The live console in a real browser (Debian's chromium, headless) against the real executable:
// what an operator sees and clicks, checked on the page and, for every write, through the admin
// API. Every wait is on a condition, bounded by DashboardGateway.Wait.
public class DashboardBrowserTests
{
    private const string TotalRequests = "#total-requests";

    [Fact]
    public async Task Dashboard_UnderLoad_ShowsTheNumbersRise_AndIsPhotographedForTheReadme()
    {
        await using var gateway = await StartAsync();
        var page = await gateway.OpenAsync(AdminToken);
        var total = await NumberAsync(page.Locator(TotalRequests));
        var served = new[] { await NumberAsync(Cell(page, "sim-0", "requests")), await NumberAsync(Cell(page, "sim-1", "requests")) };

        // Long streams held open (4,000 tokens at the simulator's ~100 tokens/s: 40 s or more,
        // longer than what follows takes on a loaded machine; cancelled at the end), so that in
        // flight, running, KV use and the sparklines show the load when the screenshot is taken.
        using var stop = new CancellationTokenSource();
        var streams = Enumerable.Range(0, 6).Select(_ => HoldStreamAsync(gateway.Binary.Data, stop.Token)).ToArray();
        await WaitAboveAsync(page, "#active-requests", 5);

        // Rounds of non-streaming requests, each waited for on the page: a few of the page's
        // updates under load, for the sparklines.
        const int PerRound = 4;
        for (var round = 1; round <= 3; round++)
        {
            for (var i = 0; i < PerRound; i++)
            {
                Assert.Equal(HttpStatusCode.OK, await gateway.ChatAsync());
            }

            await WaitAboveAsync(page, TotalRequests, total + (round * PerRound) - 1);
        }

        for (var i = 0; i < served.Length; i++)
        {
            await WaitAboveAsync(page, $"#workers tr[data-worker=\"sim-{i}\"] td[data-field=\"requests\"]", served[i]);
            await Assertions.Expect(Cell(page, $"sim-{i}", "in_flight")).Not.ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^0/"));
            await Assertions.Expect(Row(page, $"sim-{i}").Locator("svg").First).ToBeVisibleAsync();
        }

        // Two refusals (an unknown key, a model outside the tenant's allowlist) reach the recent errors.
        Assert.Equal(HttpStatusCode.Unauthorized, await gateway.ChatAsync("sk-nobody"));
        Assert.Equal(HttpStatusCode.Forbidden, await gateway.ChatAsync(TestGateway.LimitedKey));
        await Assertions.Expect(page.Locator("#errors")).ToContainTextAsync("401");
        await Assertions.Expect(page.Locator("#errors")).ToContainTextAsync("403");

        // The ledger's usage (read at most every 10 s) has caught up with the load, then the picture.
        await Assertions.Expect(page.Locator("#usage")).ToContainTextAsync("acme");
        Assert.DoesNotContain(streams, s => s.IsCompleted);
        await ScreenshotAsync(page, "dashboard.png");

        // Cancelled streams free their slots, and the page comes back down to nothing in flight.
        await stop.CancelAsync();
        await Task.WhenAll(streams);
        await ExpectTextAsync(page.Locator("#active-requests"), "0");
    }

    [Fact]
    public async Task Dashboard_DrainAndUndrainByClicking_ChangeTheWorkerInTheApi()
    {
        await using var gateway = await StartAsync();
        var page = await gateway.OpenAsync(AdminToken);

        // The write carries the token in its own header; no cookie exists to ride along (no CSRF).
        var drain = await page.RunAndWaitForRequestAsync(
            () => Row(page, "sim-1").Locator("button[data-action=\"drain\"]").ClickAsync(),
            r => r.Method == "POST" && r.Url.EndsWith("/api/workers/sim-1/drain", StringComparison.Ordinal));
        Assert.Equal("Bearer " + AdminToken, (await drain.AllHeadersAsync())["authorization"]);
        Assert.Empty(await page.Context.CookiesAsync());
        await TestGateway.WaitUntilAsync(() => gateway.DrainingAsync("sim-1"), "/api/workers says sim-1 is draining");
        await ExpectTextAsync(Cell(page, "sim-1", "draining"), "yes");
        await ExpectTextAsync(Cell(page, "sim-0", "draining"), "no");
        Assert.False(await gateway.DrainingAsync("sim-0"));

        await Row(page, "sim-1").Locator("button[data-action=\"undrain\"]").ClickAsync();
        await TestGateway.WaitUntilAsync(async () => !await gateway.DrainingAsync("sim-1"), "/api/workers says sim-1 is not draining");
        await ExpectTextAsync(Cell(page, "sim-1", "draining"), "no");
        await Assertions.Expect(Row(page, "sim-1").Locator("button[data-action=\"drain\"]")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task Dashboard_ReloadOfABrokenFile_ShowsTheErrorWithItsLine_ThenOkOnceRestored()
    {
        await using var gateway = await StartAsync();
        var page = await gateway.OpenAsync(AdminToken);
        var revision = await NumberAsync(page.Locator("#config-revision"));
        var good = gateway.Binary.Toml;
        var broken = good.Replace("[routing]\n", "[routing\n", StringComparison.Ordinal);
        var line = broken.Split('\n').ToList().IndexOf("[routing") + 1;
        Assert.True(line > 0);

        // The binary also watches the file: the click's own request and answer are checked, so
        // that the watcher's reload cannot stand in for a button that does nothing.
        await File.WriteAllTextAsync(gateway.Binary.ConfigPath, broken);
        Assert.Equal(422, await ClickReloadAsync(page));
        await Assertions.Expect(page.Locator("#reload-result")).ToContainTextAsync($"line {line}");
        Assert.Equal(revision, await NumberAsync(page.Locator("#config-revision")));

        await File.WriteAllTextAsync(gateway.Binary.ConfigPath, good);
        Assert.Equal(200, await ClickReloadAsync(page));
        await ExpectTextAsync(page.Locator("#reload-result"), "ok");
        await WaitAboveAsync(page, "#config-revision", revision);
    }

    private static async Task<int> ClickReloadAsync(IPage page)
    {
        var response = await page.RunAndWaitForResponseAsync(
            () => page.Locator("#reload").ClickAsync(),
            r => r.Request.Method == "POST" && r.Url.EndsWith("/api/config/reload", StringComparison.Ordinal));
        return response.Status;
    }

    [Fact]
    public async Task Dashboard_OnAPhone_ShowsEverySection_WithoutSidewaysScroll()
    {
        await using var gateway = await StartAsync();
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatAsync()); // something to show
        var page = await gateway.OpenAsync(AdminToken, width: 390, height: 844);

        var widths = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, window.innerWidth]");
        Assert.True(widths[0] <= widths[1], $"the page scrolls sideways: scrollWidth {widths[0]} > innerWidth {widths[1]}");
        // overflow-x: hidden on the page would pass the check above by cutting content off: what
        // reaches past the right edge must sit in a box that scrolls sideways by itself.
        Assert.Empty(await page.EvaluateAsync<string[]>(CutOffOnTheRight));
        foreach (var section in new[] { TotalRequests, "#active-requests", "#workers", "#admission", "#fair-share", "#tenants", "#usage", "#config-revision", "#reload", "#errors", "#create-tenant" })
        {
            await Assertions.Expect(page.Locator(section)).ToBeVisibleAsync();
        }

        await ScreenshotAsync(page, "dashboard-phone.png");
    }

    // Readable in a dark room: a dark page, and every text on it at WCAG AA contrast (4.5:1)
    // against the background it sits on, the error colors included.
    [Fact]
    public async Task Dashboard_IsDark_AndEveryTextHasAaContrast()
    {
        await using var gateway = await StartAsync();
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatAsync());
        Assert.Equal(HttpStatusCode.Forbidden, await gateway.ChatAsync(TestGateway.LimitedKey));
        var page = await gateway.OpenAsync(AdminToken);
        await Assertions.Expect(page.Locator("#errors")).ToContainTextAsync("403");

        Assert.Empty(await page.EvaluateAsync<string[]>(ContrastProblems));
    }

    [Fact]
    public async Task Dashboard_CreatesATenant_IssuesAKeyThatWorks_AndRevokesIt()
    {
        await using var gateway = await StartAsync();
        var page = await gateway.OpenAsync(AdminToken);

        await page.Locator("#create-tenant input[name=\"name\"]").FillAsync("team-b");
        await page.Locator("#create-tenant button[type=\"submit\"]").ClickAsync();
        await page.Locator("#tenants tr[data-tenant=\"team-b\"] button[data-action=\"issue-key\"]").ClickAsync();
        await Assertions.Expect(page.Locator("#new-key")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\S+$"));
        var key = await page.Locator("#new-key").TextContentAsync();
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatAsync(key!));

        var keys = await AdminApi.SendAsync(gateway.Binary.Admin, HttpMethod.Get, "/api/tenants/team-b/keys");
        var id = Assert.Single(keys.Body.EnumerateArray()).GetProperty("id").GetString();
        await page.Locator($"button[data-action=\"revoke-key\"][data-key-id=\"{id}\"]").ClickAsync();
        await TestGateway.WaitUntilAsync(async () => await gateway.ChatAsync(key!) == HttpStatusCode.Unauthorized, "the revoked key is refused");
    }

    [Fact]
    public async Task Dashboard_ReadOnlyToken_Watches_ButItsWriteShowsTheApisError()
    {
        await using var gateway = await StartAsync();
        var page = await gateway.OpenAsync(ReadToken);

        await Row(page, "sim-0").Locator("button[data-action=\"drain\"]").ClickAsync();
        await Assertions.Expect(page.Locator("#action-error")).ToContainTextAsync("read-only");
        Assert.False(await gateway.DrainingAsync("sim-0"));
    }

    // The elements that end past the viewport's right edge outside any sideways-scrolling box.
    private const string CutOffOnTheRight = """
        () => [...document.body.querySelectorAll('*')].filter(e => {
            const r = e.getBoundingClientRect();
            if (r.width === 0 || r.right <= window.innerWidth + 1) return false;
            for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
                if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return false;
            }
            return true;
        }).map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}${e.className ? '.' + e.className : ''} "${(e.textContent || '').slice(0, 40)}" ends at ${Math.round(e.getBoundingClientRect().right)}px`)
        """;

    // A light page background, and each visible text below 4.5:1 against its own background (the
    // nearest ancestor's that is not transparent); WCAG's relative luminance.
    private const string ContrastProblems = """
        () => {
            const rgb = s => s.match(/[\d.]+/g).map(Number);
            const channel = c => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
            const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
            const background = e => {
                for (; e; e = e.parentElement) {
                    const c = rgb(getComputedStyle(e).backgroundColor);
                    if (c.length < 4 || c[3] > 0) return c;
                }
                return [255, 255, 255];
            };
            const problems = [];
            const page = luminance(background(document.body));
            if (page > 0.05) problems.push(`the page background is light (luminance ${page.toFixed(2)})`);
            for (const e of document.body.querySelectorAll('*')) {
                if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
                const style = getComputedStyle(e);
                if (e.getBoundingClientRect().width === 0 || style.visibility === 'hidden') continue;
                const [a, b] = [luminance(rgb(style.color)), luminance(background(e))];
                const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
                if (ratio < 4.5) problems.push(`${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} "${e.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}:1`);
            }
            return problems;
        }
        """;

    private static async Task HoldStreamAsync(HttpClient data, CancellationToken stop)
    {
        try
        {
            using var response = await data.SendAsync(
                TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 4000)), HttpCompletionOption.ResponseHeadersRead, stop);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await response.Content.CopyToAsync(Stream.Null, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }
}
