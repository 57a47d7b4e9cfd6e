using System.Net;
using System.Text.Json;

namespace AotProxy.FunctionalTests.Support;

// Admission seen from outside, on a gateway whose one model pool has a single slot.
internal static class Queues
{
    // Holds the slot with a ~2 s stream (20 ms per token), queues the `early` requests one after
    // the other, then `late`, frees the slot, and returns the names in the order they were served.
    public static async Task<List<string>> ServiceOrderAsync(TestGateway gateway, string holderKey, string[] early, string earlyKey, string late, string lateKey)
    {
        gateway.Workers[0].Options.Faults.InterTokenDelay = TimeSpan.FromMilliseconds(20);
        using var holder = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: true, maxTokens: 100), holderKey), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        var order = new List<string>();
        async Task Send(string name, string key)
        {
            using var response = await gateway.Client.SendAsync(TestGateway.Post("v1/chat/completions", TestGateway.Chat(stream: false, maxTokens: 1), key));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            lock (order)
            {
                order.Add(name);
            }
        }

        var sent = early.Select(name => Send(name, earlyKey)).ToList();
        await WaitForWaitingAsync(gateway, early.Length);
        sent.Add(Send(late, lateKey));
        await WaitForWaitingAsync(gateway, early.Length + 1);
        await holder.Content.ReadAsStringAsync();

        await Task.WhenAll(sent).WaitAsync(TimeSpan.FromSeconds(30));
        return order;
    }

    public static async Task WaitForWaitingAsync(TestGateway gateway, int waiting) =>
        await TestGateway.WaitUntilAsync(
            async () => (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models") is { ValueKind: JsonValueKind.Array } models
                && models.GetArrayLength() > 0 && models[0].GetProperty("waiting").GetInt32() == waiting,
            $"{waiting} requests wait");

    public static async Task<int> InUseAsync(TestGateway gateway) =>
        (await Fleet.GetJsonAsync(gateway, "/api/queues")).GetProperty("models")[0].GetProperty("in_use").GetInt32();
}
