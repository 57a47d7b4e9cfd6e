namespace AotProxy.FunctionalTests.Support;

// `aotproxy demo` (the gateway and two simulated workers, on loopback ports), started once for a
// test class: its admin plane tells which paths are real endpoints and which metrics exist.
public sealed class DemoGatewayFixture : IAsyncLifetime
{
    private GatewayProcess? _demo;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public Uri AdminUri => _demo!.AdminUri!;

    public async Task InitializeAsync()
    {
        _demo = GatewayProcess.Start("demo", "--workers", "2", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0");
        await _demo.WaitForReadyAsync();
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (_demo is not null)
        {
            await _demo.DisposeAsync();
        }
    }
}
