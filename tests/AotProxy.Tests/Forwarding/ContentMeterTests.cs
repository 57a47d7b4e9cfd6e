using System.Buffers;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Configuration;
using AotProxy.Forwarding;
using AotProxy.Limits;
using AotProxy.Tests.Admission;
using AotProxy.Tests.Support;
using static AotProxy.Tests.Admission.AdmissionHarness;

namespace AotProxy.Tests.Forwarding;

// The one per-chunk hook: the SSE filter meters each content chunk it relays, a budget debit before
// the chunk goes out and a fair-share charge per read, so the two can never disagree on the count.
public sealed class ContentMeterTests
{
    private static readonly ModelPrice Price = new(1000, 1000, 2000);

    // chat_stream.sse has 4 content chunks: wherever the reads split it, the tenant's counter moves
    // by exactly 4 chunks past the grant's prompt estimate, once each.
    [Fact]
    public async Task Filter_EverySplitPoint_ChargesEachContentChunkOnce()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        for (var cut = 0; cut <= bytes.Length; cut += 5)
        {
            var (test, streamed) = await Streaming(promptTokens: 40);
            var filter = new SseUsageFilter(stripUsage: false, new ContentMeter(default, streamed));

            Feed(ref filter, bytes, cut, new ArrayBufferWriter<byte>());

            Assert.Equal(4, filter.ContentChunks);
            Assert.Equal(4, streamed.Chunks);
            Assert.Equal(Cost(test, 40, 4), test.Model.Tenants.Single(a => a.Name == "a").Counter, 9);
        }
    }

    // A budget with room for two output tokens: the third content chunk is neither relayed nor
    // charged, and the filter says the stream was cut.
    [Fact]
    public async Task Filter_BudgetCut_ChargesAndRelaysOnlyTheChunksThatFit()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        var (test, streamed) = await Streaming(promptTokens: 40);
        var state = new TenantBudgetState(new TenantBudgetModel(0, 0, 100_000 + (2 * 2000), 0), new FakeTimeProvider());
        state.TryReserve(100, 0, Price, false, out var reservation, streamCutoff: true);
        Assert.NotNull(reservation.State);
        var filter = new SseUsageFilter(stripUsage: false, new ContentMeter(new StreamBudget(state, Price.OutputNanos), streamed));
        var output = new ArrayBufferWriter<byte>();

        Feed(ref filter, bytes, bytes.Length, output);

        Assert.True(filter.BudgetCut);
        Assert.Equal(2, filter.ContentChunks);
        Assert.Equal(2, filter.Budget.Tokens);
        Assert.Equal(2, streamed.Chunks);
        Assert.Equal(Cost(test, 40, 2), test.Model.Tenants.Single(a => a.Name == "a").Counter, 9);
        var relayed = System.Text.Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Contains("\"content\":\".\"", relayed, StringComparison.Ordinal);
        Assert.DoesNotContain("\"content\":\" Sure\"", relayed, StringComparison.Ordinal);
    }

    private static async Task<(AdmissionHarness Test, StreamedCharge Streamed)> Streaming(long promptTokens)
    {
        var test = new AdmissionHarness(capacity: 1);
        var cls = Class();
        var admitted = await test.Admit(Tenant("a", cls), cls, promptTokens: promptTokens);
        var streamed = new StreamedCharge();
        admitted.Lease.StartStream(streamed);
        return (test, streamed);
    }

    // Two reads split at `cut`, the unconsumed rest kept for the next as the forwarder's pipe does.
    private static void Feed(ref SseUsageFilter filter, byte[] bytes, int cut, ArrayBufferWriter<byte> output)
    {
        var pending = Array.Empty<byte>();
        foreach (var (chunk, isFinal) in new[] { (bytes[..cut], false), (bytes[cut..], true) })
        {
            var joined = pending.Concat(chunk).ToArray();
            var consumed = filter.Process(Segments.Split(joined, []), output, isFinal, out _);
            pending = new ReadOnlySequence<byte>(joined).Slice(consumed).ToArray();
            if (filter.BudgetCut)
            {
                return;
            }
        }
    }

    private static double Cost(AdmissionHarness test, long prompt, long completion) =>
        (test.Scheduler.InputWeight * prompt) + (test.Scheduler.OutputWeight * completion);
}
