using AotProxy.Accounting;

namespace AotProxy.Tests.Accounting;

// A request's cost in nano-USD from its usage: what the budgets are charged and the ledger stores.
public sealed class ModelPriceTests
{
    // $2.50 / $1.25 cached / $10 per million tokens.
    private static readonly ModelPrice Price = new(InputNanos: 2500, CachedInputNanos: 1250, OutputNanos: 10_000);

    [Fact]
    public void CostNanos_PromptAndCompletion_AtTheirPrices()
    {
        // 1000 x 2500 + 200 x 10000 = 4,500,000 nano-USD = $0.0045.
        Assert.Equal(4_500_000, Price.CostNanos(new Usage(1000, 200)));
    }

    [Fact]
    public void CostNanos_CachedPromptTokens_CostTheCachedPrice()
    {
        // 600 uncached x 2500 + 400 cached x 1250 + 0 completion.
        Assert.Equal(2_000_000, Price.CostNanos(new Usage(1000, 0, CachedPromptTokens: 400)));
    }

    [Fact]
    public void CostNanos_ReasoningTokens_AreCompletionTokensAlready()
    {
        Assert.Equal(Price.CostNanos(new Usage(10, 50)), Price.CostNanos(new Usage(10, 50, ReasoningTokens: 30)));
    }

    [Fact]
    public void CostNanos_MoreCachedThanPromptTokens_CountsAtMostThePrompt()
    {
        Assert.Equal(10 * 1250, Price.CostNanos(new Usage(10, 0, CachedPromptTokens: 50)));
    }

    [Fact]
    public void CostNanos_Free_IsZero()
    {
        Assert.True(default(ModelPrice).IsFree);
        Assert.Equal(0, default(ModelPrice).CostNanos(new Usage(1000, 1000)));
    }

    [Fact]
    public void WorstCaseNanos_EveryPromptTokenAtTheFullInputPrice()
    {
        Assert.Equal((100 * 2500) + (50 * 10_000), Price.WorstCaseNanos(100, 50));
    }
}
