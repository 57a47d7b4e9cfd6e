namespace AotProxy.Admin.Contracts;

// POST /api/tenants (create; name required, the rest defaults as in [[tenants]]) and
// PATCH /api/tenants/{name} (only the keys given change): the keys [[tenants]] accepts, but
// api_key_sha256 (keys are issued: POST /api/tenants/{name}/keys). Unknown keys are a 400.
internal sealed record TenantRequest
{
    public string? Name { get; init; }

    public string? Class { get; init; }

    public int? Weight { get; init; }

    public string[]? Models { get; init; }

    public long? Rpm { get; init; }

    public long? Tpm { get; init; }

    public int? MaxInFlight { get; init; }

    public long? BudgetTokens { get; init; }

    public long? MonthlyBudgetTokens { get; init; }

    public double? BudgetUsd { get; init; }

    public double? MonthlyBudgetUsd { get; init; }

    public string? Environment { get; init; }

    public bool? CacheSalt { get; init; }

    public bool? StreamBudgetCutoff { get; init; }

    public bool? ResponseCache { get; init; }
}
