using System.ClientModel;
using AotProxy.FunctionalTests.Support;
using AotProxy.Identity;
using OpenAI;
using OpenAI.Chat;

namespace AotProxy.FunctionalTests;

// Issue 21's model "auto" through the real binary, with the official OpenAI .NET client: two
// simulated workers serve "small" (cheap, chat only) and "big" (dear; chat, tools, vision). A plain
// chat goes to the cheaper, one with a tool or an image to the one that can, one longer than
// small's context to big; a tenant allowed small alone gets 400 no_model_fits for a tool call.
public class AutoModelBinaryTests
{
    private const string NarrowKey = "sk-test-narrow";

    [Fact]
    public async Task Auto_PicksByPriceCapabilityAndContext_NamesTheModelInBodyAndHeader_AndRefusesWhatNothingFits()
    {
        await using var gateway = await StartAsync("big", """["chat", "tools", "vision"]""");
        var client = Client(gateway, TestGateway.Key);

        // Plain chat, both idle: the cheaper.
        var plain = await client.CompleteChatAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { MaxOutputTokenCount = 8 });
        Assert.Equal("small", plain.Value.Model);
        Assert.True(plain.GetRawResponse().Headers.TryGetValue("x-gateway-model", out var header));
        Assert.Equal("small", header);

        // A tool: only big declares tools.
        var tools = new ChatCompletionOptions { MaxOutputTokenCount = 8 };
        tools.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "The weather in a city", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}""")));
        var withTool = await client.CompleteChatAsync([new UserChatMessage("Weather in Paris?")], tools);
        Assert.Equal("big", withTool.Value.Model);

        // An image part: only big declares vision.
        var image = await client.CompleteChatAsync(
            [new UserChatMessage(ChatMessageContentPart.CreateTextPart("What is this?"), ChatMessageContentPart.CreateImagePart(new Uri("https://example.com/cat.png")))],
            new ChatCompletionOptions { MaxOutputTokenCount = 8 });
        Assert.Equal("big", image.Value.Model);

        // Longer than small's context (200): prompt + max_tokens 300.
        var streamed = new List<string?>();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { MaxOutputTokenCount = 300 }))
        {
            streamed.Add(update.Model);
        }

        Assert.NotEmpty(streamed);
        Assert.All(streamed, m => Assert.Equal("big", m));

        // Nothing narrow may use can call tools: 400 with the code, and no worker was asked.
        var before = gateway.Workers.Sum(w => w.Stats.RequestsTotal);
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client(gateway, NarrowKey).CompleteChatAsync([new UserChatMessage("Weather?")], tools));
        Assert.Equal(400, refused.Status);
        Assert.Contains("no_model_fits", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, gateway.Workers.Sum(w => w.Stats.RequestsTotal));

        // Counted under the served models (the ledger's model too), never "auto": read once all
        // five are counted (in their finally, which may run after the client has its answer).
        var metrics = await Fleet.MetricsAfterAsync(gateway.Admin, 5);
        Assert.Equal(1, MetricsText.Value(metrics, "llm_gateway_requests_total", "model=\"small\"", "status=\"200\""));
        Assert.Equal(3, MetricsText.Value(metrics, "llm_gateway_requests_total", "model=\"big\"", "status=\"200\""));
    }

    // Audio with model "auto": the speech model (declared "transcription") serves a transcription
    // and a translation, though the chat model is cheaper; a tenant that may use the chat model
    // alone gets 400 no_model_fits in the OpenAI error shape, and no worker is asked.
    [Fact]
    public async Task Auto_OnAnAudioUpload_PicksTheSpeechModel_AndWithoutOneRefusesInTheOpenAiShape()
    {
        await using var gateway = await StartAsync("whisper", """["transcription"]""");

        foreach (var path in new[] { "v1/audio/transcriptions", "v1/audio/translations" })
        {
            using var served = await gateway.Data.SendAsync(AudioUpload.Post(path, "auto"));
            var text = await served.Content.ReadAsStringAsync();
            Assert.True(served.StatusCode == System.Net.HttpStatusCode.OK, text);
            Assert.Equal("whisper", served.Headers.GetValues("x-gateway-model").Single());
            Assert.NotEqual("", System.Text.Json.JsonDocument.Parse(text).RootElement.GetProperty("text").GetString());
        }

        Assert.Equal((0L, 2L), (gateway.Workers[0].Stats.RequestsTotal, gateway.Workers[1].Stats.RequestsTotal));

        using var refused = await gateway.Data.SendAsync(AudioUpload.Post("v1/audio/transcriptions", "auto", key: NarrowKey));
        var body = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == System.Net.HttpStatusCode.BadRequest, body);
        using var error = System.Text.Json.JsonDocument.Parse(body);
        var fields = error.RootElement.GetProperty("error");
        Assert.Equal(("invalid_request_error", "no_model_fits", "model"), (fields.GetProperty("type").GetString(), fields.GetProperty("code").GetString(), fields.GetProperty("param").GetString()));
        Assert.Contains("transcription", fields.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, gateway.Workers.Sum(w => w.Stats.RequestsTotal));
    }

    // Two simulated workers: "small" (cheap, chat only, 200 tokens of context) and `dear` (dear,
    // with these capabilities); tenant narrow may use small alone.
    private static Task<BinaryGateway> StartAsync(string dear, string capabilities) => BinaryGateway.StartTwoModelsAsync("small", dear, $"""

        [[tenants]]
        name = "narrow"
        api_key_sha256 = ["{ApiKeyIndex.HashKey(NarrowKey)}"]
        models = ["small"]
        {AutoModelToml.Catalog("small", 200, dear, capabilities)}
        """);

    private static ChatClient Client(BinaryGateway gateway, string key) => new(
        "auto",
        new ApiKeyCredential(key),
        new OpenAIClientOptions
        {
            Endpoint = new Uri(gateway.Data.BaseAddress!, "v1"),
            NetworkTimeout = TimeSpan.FromSeconds(60),
            RetryPolicy = new System.ClientModel.Primitives.ClientRetryPolicy(maxRetries: 0),
        });
}
