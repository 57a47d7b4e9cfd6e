using System.Net.Http.Headers;
using System.Text;

namespace AotProxy.Cli;

// The CLI's side of the admin API: --admin URL (or AOTPROXY_ADMIN, default the local admin
// listener) and --token T (or AOTPROXY_ADMIN_TOKEN), one request per command.
internal sealed class AdminClient : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string _baseUrl;
    private readonly string? _token;

    public AdminClient(CliArgs args)
    {
        _baseUrl = BaseUrlOf(args);
        _token = args.Option("token") ?? Environment.GetEnvironmentVariable("AOTPROXY_ADMIN_TOKEN");
    }

    public string BaseUrl => _baseUrl;

    public static string BaseUrlOf(CliArgs args) =>
        (args.Option("admin") ?? Environment.GetEnvironmentVariable("AOTPROXY_ADMIN") ?? "http://127.0.0.1:9090").TrimEnd('/');

    // The status and body; null when the API cannot be reached (said on `errors`).
    public async Task<(bool Ok, string Body)?> SendAsync(HttpMethod method, string path, string? json, TextWriter errors)
    {
        using var request = new HttpRequestMessage(method, _baseUrl + path);
        if (!string.IsNullOrEmpty(_token))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        try
        {
            using var response = await _http.SendAsync(request).ConfigureAwait(false);
            return (response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync().ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            await errors.WriteLineAsync($"cannot reach the admin API at {_baseUrl}: {ex.Message}").ConfigureAwait(false);
            return null;
        }
    }

    public void Dispose() => _http.Dispose();
}
