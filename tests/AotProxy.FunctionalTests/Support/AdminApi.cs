using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// One admin API call with a JSON body and an admin token: the status and the body, parsed.
internal static class AdminApi
{
    public static async Task<(HttpStatusCode Status, JsonElement Body, string Text)> SendAsync(HttpClient admin, HttpMethod method, string path, string? json = null, string? token = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await admin.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(text.Length == 0 ? "null" : text);
        return (response.StatusCode, document.RootElement.Clone(), text);
    }

    // A new key of the tenant: (id, key).
    public static async Task<(string Id, string Key)> IssueAsync(HttpClient admin, string tenant, string json = """{"label":"test"}""", string? token = null)
    {
        var (status, body, text) = await SendAsync(admin, HttpMethod.Post, $"/api/tenants/{tenant}/keys", json, token);
        Assert.True(status == HttpStatusCode.Created, text);
        return (body.GetProperty("id").GetString()!, body.GetProperty("key").GetString()!);
    }

    public static string ErrorCode(JsonElement body) => body.GetProperty("error").GetProperty("code").GetString()!;
}
