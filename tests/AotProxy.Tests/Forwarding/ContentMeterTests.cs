using System.Buffers;
using System.Text;
using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Cluster;
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
            var filter = new SseUsageFilter(stripUsage: false, Meter(streamed, default));

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
        var meter = Meter(streamed, new StreamBudget(state, Price.OutputNanos));
        var filter = new SseUsageFilter(stripUsage: false, meter);
        var output = new ArrayBufferWriter<byte>();

        Feed(ref filter, bytes, bytes.Length, output);

        Assert.True(filter.BudgetCut);
        Assert.Equal(2, filter.ContentChunks);
        Assert.Equal(2, meter.Budget.Tokens);
        Assert.Equal(2, streamed.Chunks);
        Assert.Equal(Cost(test, 40, 2), test.Model.Tenants.Single(a => a.Name == "a").Counter, 9);
        var relayed = System.Text.Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Contains("\"content\":\".\"", relayed, StringComparison.Ordinal);
        Assert.DoesNotContain("\"content\":\" Sure\"", relayed, StringComparison.Ordinal);
    }

    // [cluster]: each content chunk also takes a token of a block leased from the fleet's budgets.
    // The filter stops before the chunk that finds its block empty (nothing of it relayed, nothing
    // debited), goes on from there once a block is added, and cuts at the chunk after the store
    // said nothing is left; the local debits are exactly the chunks relayed.
    [Fact]
    public async Task Filter_FleetBlocks_StopBeforeTheChunkThatNeedsOne_AndCutWhenTheFleetHasNoneLeft()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        var (_, streamed) = await Streaming(promptTokens: 40);
        var state = new TenantBudgetState(new TenantBudgetModel(1000, 0, 0, 0), new FakeTimeProvider());
        state.TryReserve(10, 0, Price, false, out var reservation, streamCutoff: true);
        Assert.NotNull(reservation.State);
        var store = new SharedTenantLimits(() => null, () => "one");
        var place = new SharedPlace(store, new SharedDemand("a", 0, 0, 0, 0, state.Budget, 10, 0, 202612), Second: 1);
        var meter = Meter(streamed, new StreamBudget(state, Price.OutputNanos, place));
        var filter = new SseUsageFilter(stripUsage: false, meter);
        var output = new ArrayBufferWriter<byte>();
        var buffer = new ReadOnlySequence<byte>(bytes);

        var consumed = filter.Process(buffer, output, isFinal: true, out _);
        Assert.True(filter.NeedsBlock);
        Assert.Equal(0, filter.ContentChunks);
        Assert.EndsWith("\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"prompt_token_ids\":null}\n\n", Encoding.UTF8.GetString(output.WrittenSpan), StringComparison.Ordinal); // the role chunk only

        filter.AddBlock(2);
        consumed = filter.Process(buffer.Slice(consumed), output, isFinal: true, out _);
        Assert.True(filter.NeedsBlock);
        Assert.Equal(2, filter.ContentChunks);
        Assert.Equal(2, meter.Budget.Leased);
        Assert.Equal(10 + 2, state.ReservedTokens);

        filter.AddBlock(0); // the fleet's budgets have nothing left
        filter.Process(buffer.Slice(consumed), output, isFinal: true, out _);
        Assert.False(filter.NeedsBlock);
        Assert.True(filter.BudgetCut);
        Assert.False(meter.Budget.StoreClosed);
        Assert.Equal(2, filter.ContentChunks);
        Assert.Equal(2, meter.Budget.Tokens);
        Assert.Equal(10 + 2, state.ReservedTokens);
        var relayed = Encoding.UTF8.GetString(output.WrittenSpan);
        Assert.Equal(1, relayed.Split("\"content\":\"Okay\"").Length - 1);
        Assert.Equal(1, relayed.Split("\"content\":\".\"").Length - 1);
        Assert.DoesNotContain("\"content\":\" Sure\"", relayed, StringComparison.Ordinal);
    }

    // The store does not answer a lease: store_down = "local" goes on on this replica's own view
    // (every chunk relayed, debited locally); the stream holds no block to give back.
    [Fact]
    public async Task Filter_FleetBlockStoreDown_Local_GoesOnOnTheReplicasOwnView()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        var (_, streamed) = await Streaming(promptTokens: 40);
        var state = new TenantBudgetState(new TenantBudgetModel(1000, 0, 0, 0), new FakeTimeProvider());
        var store = new SharedTenantLimits(() => null, () => "one");
        var place = new SharedPlace(store, new SharedDemand("a", 0, 0, 0, 0, state.Budget, 10, 0, 202612), Second: 1);
        var meter = Meter(streamed, new StreamBudget(state, Price.OutputNanos, place));
        var filter = new SseUsageFilter(stripUsage: false, meter);
        var buffer = new ReadOnlySequence<byte>(bytes);

        var consumed = filter.Process(buffer, new ArrayBufferWriter<byte>(), isFinal: true, out _);
        Assert.True(filter.NeedsBlock);
        filter.AddBlock(await filter.LeaseBlockAsync()); // not connected: StoreDownBlock
        filter.Process(buffer.Slice(consumed), new ArrayBufferWriter<byte>(), isFinal: true, out _);

        Assert.False(filter.NeedsBlock);
        Assert.False(filter.BudgetCut);
        Assert.Equal(4, filter.ContentChunks);
        Assert.Equal((4L, 0L), (meter.Budget.Tokens, meter.Budget.Leased));
    }

    // One meter per request, started for each attempt: an attempt that was not accounted gave its
    // debits back, and the next one debits from nothing and charges each of its own chunks once.
    [Fact]
    public async Task Start_ForTheNextAttempt_BeginsFromNothing_AndChargesItsOwnChunksOnce()
    {
        var bytes = Fixtures.Bytes("openai/chat_stream.sse");
        var (test, streamed) = await Streaming(promptTokens: 40);
        var state = new TenantBudgetState(new TenantBudgetModel(1000, 0, 0, 0), new FakeTimeProvider());
        state.TryReserve(100, 0, Price, false, out var reservation, streamCutoff: true);
        Assert.NotNull(reservation.State);
        var meter = Meter(streamed, new StreamBudget(state, Price.OutputNanos));
        var first = new SseUsageFilter(stripUsage: false, meter);
        Feed(ref first, bytes, bytes.Length, new ArrayBufferWriter<byte>());
        Assert.Equal((4L, 100L + 4), (meter.Budget.Tokens, state.ReservedTokens));
        meter.GiveBack(); // the forwarder's finally, for an attempt it did not hand over

        meter.Start(new StreamBudget(state, Price.OutputNanos));
        Assert.Equal((0L, 100L), (meter.Budget.Tokens, state.ReservedTokens));
        var second = new SseUsageFilter(stripUsage: false, meter);
        Feed(ref second, bytes, bytes.Length, new ArrayBufferWriter<byte>());

        Assert.Equal((4L, 100L + 4), (meter.Budget.Tokens, state.ReservedTokens));
        Assert.Equal(4 + 4, streamed.Chunks); // both attempts' chunks went out, each charged once
        Assert.Equal(Cost(test, 40, 8), test.Model.Tenants.Single(a => a.Name == "a").Counter, 9);
    }

    private static ContentMeter Meter(StreamedCharge streamed, in StreamBudget budget)
    {
        var meter = new ContentMeter(streamed);
        meter.Start(budget);
        return meter;
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
