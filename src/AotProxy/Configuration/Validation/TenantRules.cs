using System.Buffers.Binary;
using System.Collections.Immutable;

namespace AotProxy.Configuration.Validation;

// [[tenants]]: names, classes, keys, allowlists, limits and budgets.
internal static class TenantRules
{
    public static ImmutableArray<TenantModel> Validate(ValidationContext context, IReadOnlyList<TenantConfig> tenants, ImmutableArray<ClassModel> classes, bool implicitClasses)
    {
        var result = ImmutableArray.CreateBuilder<TenantModel>(tenants.Count);
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        var classNames = classes.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var keyOwners = new Dictionary<(ulong, ulong, ulong, ulong), (int Tenant, int Key)>(); // digest -> where it is listed
        for (var i = 0; i < tenants.Count; i++)
        {
            var tenant = tenants[i];
            var at = $"tenants[{i}]";
            context.Unknown(at, tenant.Unknown);
            context.Name(new(at, "name"), tenant.Name, "tenant", names, i, "tenants");
            if (!classNames.Contains(tenant.Class))
            {
                var known = implicitClasses
                    ? $"without [[classes]] the only class is \"{ClassModel.DefaultName}\""
                    : $"[[classes]] defines {string.Join(", ", classes.Select(c => $"\"{c.Name}\""))}";
                context.Error(new(at, "class"), $"class \"{tenant.Class}\" is not defined; {known}");
            }

            context.AtLeast(new(at, "weight"), tenant.Weight, 1);
            var hashes = ImmutableArray.CreateBuilder<ImmutableArray<byte>>(tenant.ApiKeySha256.Count);
            for (var k = 0; k < tenant.ApiKeySha256.Count; k++)
            {
                var path = new KeyPath(at, "api_key_sha256", k);
                var hash = context.Sha256(path, tenant.ApiKeySha256[k], allowEmpty: false);
                if (hash.IsEmpty)
                {
                    continue;
                }

                var digest = hash.AsSpan();
                var key = (BinaryPrimitives.ReadUInt64LittleEndian(digest), BinaryPrimitives.ReadUInt64LittleEndian(digest[8..]), BinaryPrimitives.ReadUInt64LittleEndian(digest[16..]), BinaryPrimitives.ReadUInt64LittleEndian(digest[24..]));
                if (!keyOwners.TryAdd(key, (i, k)))
                {
                    var owner = keyOwners[key];
                    context.Error(path, $"the same key hash is already listed at tenants[{owner.Tenant}].api_key_sha256[{owner.Key}]; a key must identify one tenant");
                    continue;
                }

                hashes.Add(hash);
            }

            if (tenant.Models.Count == 0)
            {
                context.Error(new(at, "models"), "must list at least one model; \"*\" allows all");
            }

            for (var m = 0; m < tenant.Models.Count; m++)
            {
                if (string.IsNullOrWhiteSpace(tenant.Models[m]))
                {
                    context.Error(new(at, "models", m), "a model name must not be empty");
                }
            }

            context.PerMinute(new(at, "rpm"), tenant.Rpm);
            context.PerMinute(new(at, "tpm"), tenant.Tpm);
            context.AtLeast(new(at, "max_in_flight"), tenant.MaxInFlight, 0);
            var budget = Budget(context, at, tenant);
            if (tenant.StreamBudgetCutoff && budget is null)
            {
                context.Error(new(at, "stream_budget_cutoff"), "cuts a stream at the tenant's budget, and this tenant has none; set budget_tokens, monthly_budget_tokens, budget_usd or monthly_budget_usd, or remove it");
            }

            var salted = tenant.CacheSalt ?? classes.FirstOrDefault(c => c.Name == tenant.Class)?.CacheSalt ?? false;
            result.Add(new TenantModel(
                tenant.Name,
                tenant.Class,
                tenant.Weight,
                hashes.DrainToImmutable(),
                [.. tenant.Models],
                tenant.Rpm,
                tenant.Tpm,
                tenant.MaxInFlight,
                tenant.Environment,
                budget)
            { CacheSalt = salted ? new TenantCacheSalt(tenant.Name) : null, StreamBudgetCutoff = tenant.StreamBudgetCutoff && budget is not null, ResponseCache = tenant.ResponseCache });
        }

        return result.MoveToImmutable();
    }

    // null when the tenant sets no budget: it then costs the limit stage nothing.
    private static TenantBudgetModel? Budget(ValidationContext context, string at, TenantConfig tenant)
    {
        if (tenant is { BudgetTokens: 0, MonthlyBudgetTokens: 0, BudgetUsd: 0, MonthlyBudgetUsd: 0 })
        {
            return null;
        }

        var budget = new TenantBudgetModel(
            BudgetTokens(context, new(at, "budget_tokens"), tenant.BudgetTokens),
            BudgetTokens(context, new(at, "monthly_budget_tokens"), tenant.MonthlyBudgetTokens),
            BudgetNanos(context, new(at, "budget_usd"), tenant.BudgetUsd),
            BudgetNanos(context, new(at, "monthly_budget_usd"), tenant.MonthlyBudgetUsd));
        return budget is { Tokens: 0, MonthlyTokens: 0, Nanos: 0, MonthlyNanos: 0 } ? null : budget;
    }

    private static long BudgetTokens(ValidationContext context, KeyPath path, long value)
    {
        if (value is < 0 or > TenantBudgetModel.MaxTokens)
        {
            context.Error(path, $"must be 0 (no budget) to {TenantBudgetModel.MaxTokens} tokens (got {value})");
            return 0;
        }

        return value;
    }

    // USD to whole nano-USD, rounded to the nearest: a budget finer than 1e-9 USD means nothing.
    private static long BudgetNanos(ValidationContext context, KeyPath path, double usd)
    {
        if (!(usd >= 0) || usd > TenantBudgetModel.MaxUsd)
        {
            context.Error(path, $"must be 0 (no budget) to {ValidationContext.Number(TenantBudgetModel.MaxUsd)} USD (got {ValidationContext.Number(usd)})");
            return 0;
        }

        return (long)Math.Round(usd * 1e9, MidpointRounding.AwayFromZero);
    }
}
