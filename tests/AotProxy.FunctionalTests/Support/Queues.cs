using System.Net;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// Admission seen from outside, on a gateway whose one model pool has a single slot.
internal static class Queues
{
    // Holds the slot with a ~2 s stream (20 ms per token), queues the `early` requests one after
    // the other, then `late`, frees the slot, and returns the name of the request served first.
    // Each queued request is a ~2 s stream of its own, so the one that gets the slot holds it
    // while its head reaches the client: the first head to arrive names it, however late the
    // client's continuations run on a loaded machine.
    public static async Task<string> FirstServedAsync(TestGateway gateway, string holderKey, string[] early, string earlyKey, string late, string lateKey)
    {
        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(20);
        using var holder = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 100), holderKey), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        using var abandon = new CancellationTokenSource();
        var names = new List<string>();
        var heads = new List<Task<HttpResponseMessage>>();
        void Send(string name, string key)
        {
            names.Add(name);
            heads.Add(gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 100), key), HttpCompletionOption.ResponseHeadersRead, abandon.Token));
        }

        foreach (var name in early)
        {
            Send(name, earlyKey);
        }

        await WaitForWaitingAsync(gateway, early.Length);
        Send(late, lateKey);
        await WaitForWaitingAsync(gateway, early.Length + 1);
        await holder.Content.ReadAsStringAsync();

        var first = await Task.WhenAny(heads).WaitAsync(TimeSpan.FromSeconds(30));
        using var served = await first;
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        await abandon.CancelAsync();
        foreach (var head in heads.Where(h => h != first))
        {
            try
            {
                (await head).Dispose();
            }
            catch (OperationCanceledException)
            {
                // Still queued when the test left: the gateway frees its place.
            }
        }

        return names[heads.IndexOf(first)];
    }

    public static async Task WaitForWaitingAsync(TestGateway gateway, int waiting) =>
        await TestGateway.WaitUntilAsync(
            async () => (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models") is { ValueKind: JsonValueKind.Array } models
                && models.GetArrayLength() > 0 && models[0].GetProperty("waiting").GetInt32() == waiting,
            $"{waiting} requests wait");

    public static async Task<int> InUseAsync(TestGateway gateway) =>
        (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models")[0].GetProperty("in_use").GetInt32();
}
