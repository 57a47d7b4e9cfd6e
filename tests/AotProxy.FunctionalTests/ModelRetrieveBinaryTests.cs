using System.Net;
using System.Text.Json;
using AotProxy.FunctionalTests.Support;

namespace AotProxy.FunctionalTests;

// GET /v1/models/{id} through the real binary (issue 21), called as an application would, with the
// official openai npm client's models.retrieve: the merged entry of a model the caller may use (a
// base model with its workers' max_model_len; a LoRA adapter with its root and parent), and
// OpenAI's 404 model_not_found for any other id, the ones the caller's allowlist hides included.
public class ModelRetrieveBinaryTests
{
    private const string Adapter = "sql-lora";

    [Fact]
    public async Task ModelsRetrieve_GivesTheMergedEntry_And404ForWhatTheCallerCannotUse()
    {
        await using var gateway = await BinaryGateway.StartAsync(2, discoverModels: true, configure: o => o.LoraModules = [Adapter]);
        var maxModelLen = gateway.Workers[0].Options.MaxModelLen;

        var model = await NodeChat.RetrieveModelAsync(gateway, TestGateway.Model);
        Assert.True(model.GetProperty("ok").GetBoolean(), model.ToString());
        var entry = model.GetProperty("model");
        Assert.Equal((TestGateway.Model, "model", maxModelLen), (entry.GetProperty("id").GetString(), entry.GetProperty("object").GetString(), entry.GetProperty("max_model_len").GetInt32()));
        Assert.False(entry.TryGetProperty("parent", out _), entry.ToString());

        // Discovery lists the adapter once a worker reported it; its entry names its base model.
        await TestGateway.WaitUntilAsync(async () => (await gateway.Data.SendAsync(Get($"v1/models/{Adapter}"))).StatusCode == HttpStatusCode.OK, "the adapter is served");
        var adapter = await NodeChat.RetrieveModelAsync(gateway, Adapter);
        Assert.True(adapter.GetProperty("ok").GetBoolean(), adapter.ToString());
        entry = adapter.GetProperty("model");
        Assert.Equal((Adapter, TestGateway.Model, Adapter, maxModelLen), (entry.GetProperty("id").GetString(), entry.GetProperty("parent").GetString(), entry.GetProperty("root").GetString(), entry.GetProperty("max_model_len").GetInt32()));

        // Unknown, and outside the "limited" tenant's allowlist: the same 404, which the client raises.
        foreach (var (id, key) in new[] { ("no-such-model", TestGateway.Key), (TestGateway.Model, TestGateway.LimitedKey) })
        {
            var missing = await NodeChat.RetrieveModelAsync(gateway, id, key);
            Assert.False(missing.GetProperty("ok").GetBoolean(), missing.ToString());
            Assert.Equal(("NotFoundError", 404, "model_not_found"), (missing.GetProperty("error").GetString(), missing.GetProperty("status").GetInt32(), missing.GetProperty("code").GetString()));
        }

        // The raw answers: OpenAI's error shape, 401 without a key, 405 for another method.
        using (var notFound = await gateway.Data.SendAsync(Get("v1/models/no-such-model")))
        {
            using var json = JsonDocument.Parse(await notFound.Content.ReadAsStringAsync());
            var error = json.RootElement.GetProperty("error");
            Assert.Equal(("invalid_request_error", "model_not_found", "model"), (error.GetProperty("type").GetString(), error.GetProperty("code").GetString(), error.GetProperty("param").GetString()));
        }

        using (var anonymous = await gateway.Data.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"v1/models/{TestGateway.Model}")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        using (var post = await gateway.Data.SendAsync(TestGateway.Post($"v1/models/{TestGateway.Model}", "{}")))
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        }
    }

    private static HttpRequestMessage Get(string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", TestGateway.Key);
        return request;
    }
}
