using System.Globalization;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// The official openai npm client's calls (Node/*.mjs; tests/run.sh installs the package with npm
// ci): one streamed chat (stream-chat.mjs), one models.retrieve (retrieve-model.mjs); each prints
// one JSON line, what it got or what the client raised.
internal static class NodeChat
{
    // header: one request header as "name=value", or null; commentLog (with a header): a file the
    // script appends each SSE comment line to as it receives it.
    public static Task<JsonElement> StreamAsync(BinaryGateway gateway, int maxTokens, string key = TestGateway.Key, string? header = null, string? commentLog = null)
    {
        string[] arguments = [new Uri(gateway.Process.DataUri!, "v1").ToString(), key, TestGateway.Model, maxTokens.ToString(CultureInfo.InvariantCulture)];
        string[] optional = header is null ? [] : commentLog is null ? [header] : [header, commentLog];
        return NodeClient.RunAsync("stream-chat.mjs", "openai", [.. arguments, .. optional]);
    }

    // client.models.retrieve(id) (Node/retrieve-model.mjs).
    public static Task<JsonElement> RetrieveModelAsync(BinaryGateway gateway, string id, string key = TestGateway.Key) =>
        NodeClient.RunAsync("retrieve-model.mjs", "openai", new Uri(gateway.Process.DataUri!, "v1").ToString(), key, id);
}
