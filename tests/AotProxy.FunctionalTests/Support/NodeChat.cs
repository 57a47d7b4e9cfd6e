using System.Globalization;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// One streamed chat through the official openai npm client (Node/stream-chat.mjs; tests/run.sh
// installs the package with npm ci): its one JSON line, {ok, text} or what the client raised.
internal static class NodeChat
{
    // header: one request header as "name=value", or null.
    public static Task<JsonElement> StreamAsync(BinaryGateway gateway, int maxTokens, string key = TestGateway.Key, string? header = null)
    {
        string[] arguments = [new Uri(gateway.Process.DataUri!, "v1").ToString(), key, TestGateway.Model, maxTokens.ToString(CultureInfo.InvariantCulture)];
        return NodeClient.RunAsync("stream-chat.mjs", "openai", header is null ? arguments : [.. arguments, header]);
    }
}
