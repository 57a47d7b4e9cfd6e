using System.Collections.Frozen;
using AotProxy.Accounting;

namespace AotProxy.Configuration.Validation;

// [[prices]]: USD per million tokens, per model.
internal static class PriceRules
{
    public static PricesModel Validate(ValidationContext context, IReadOnlyList<PriceConfig> prices)
    {
        if (prices.Count == 0)
        {
            return PricesModel.None;
        }

        var byModel = new Dictionary<string, ModelPrice>(StringComparer.Ordinal);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        ModelPrice fallback = default;
        for (var i = 0; i < prices.Count; i++)
        {
            var price = prices[i];
            var at = $"prices[{i}]";
            context.Unknown(at, price.Unknown);
            if (!context.Name($"{at}.model", price.Model, "price's model", names, i, "prices"))
            {
                continue;
            }

            var input = PriceNanos(context, $"{at}.input_per_million", price.InputPerMillion);
            var model = new ModelPrice(
                input,
                price.CachedInputPerMillion is { } cached ? PriceNanos(context, $"{at}.cached_input_per_million", cached) : input,
                PriceNanos(context, $"{at}.output_per_million", price.OutputPerMillion),
                AudioSecondNanos(context, $"{at}.audio_per_second", price.AudioPerSecond));
            if (price.Model == PricesModel.AnyModel)
            {
                fallback = model;
            }
            else
            {
                byModel[price.Model] = model;
            }
        }

        return new PricesModel(byModel.ToFrozenDictionary(StringComparer.Ordinal), fallback);
    }

    // USD per million tokens to whole nano-USD per token (x 1,000). A price with more than three
    // decimals has no whole nano-USD per token and is refused rather than rounded: a rounded
    // price would bill every token slightly wrong, and the sums would drift from the provider's.
    private static long PriceNanos(ValidationContext context, string path, double perMillion)
    {
        if (!(perMillion >= 0) || perMillion > ModelPrice.MaxPerMillion)
        {
            context.Error(path, $"must be 0 to {ValidationContext.Number(ModelPrice.MaxPerMillion)} USD per million tokens (got {ValidationContext.Number(perMillion)})");
            return 0;
        }

        var nanos = Math.Round(perMillion * 1000);
        if (Math.Abs((perMillion * 1000) - nanos) > 1e-6)
        {
            context.Error(path, $"has more than 3 decimals (got {ValidationContext.Number(perMillion)}); the gateway counts whole nano-USD per token, 0.001 USD per million tokens");
            return 0;
        }

        return (long)nanos;
    }

    // USD per second of audio to whole nano-USD: at most 9 decimals, for the reason above.
    private static long AudioSecondNanos(ValidationContext context, string path, double perSecond)
    {
        if (!(perSecond >= 0) || perSecond > ModelPrice.MaxPerSecond)
        {
            context.Error(path, $"must be 0 to {ValidationContext.Number(ModelPrice.MaxPerSecond)} USD per second of audio (got {ValidationContext.Number(perSecond)})");
            return 0;
        }

        var nanos = Math.Round(perSecond * 1e9);
        if (Math.Abs((perSecond * 1e9) - nanos) > 1e-3)
        {
            context.Error(path, $"has more than 9 decimals (got {ValidationContext.Number(perSecond)}); the gateway counts whole nano-USD");
            return 0;
        }

        return (long)nanos;
    }
}
