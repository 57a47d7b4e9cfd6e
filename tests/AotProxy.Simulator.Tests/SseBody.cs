namespace AotProxy.Simulator.Tests;

// Splits an SSE body the way vLLM frames it: every event is exactly "data: <payload>\n\n".
internal static class SseBody
{
    public static List<string> DataPayloads(string body)
    {
        Assert.EndsWith("\n\n", body, StringComparison.Ordinal);
        var events = body[..^2].Split("\n\n");
        var payloads = new List<string>(events.Length);
        foreach (var e in events)
        {
            Assert.StartsWith("data: ", e, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e);
            payloads.Add(e["data: ".Length..]);
        }

        return payloads;
    }
}
