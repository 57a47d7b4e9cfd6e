namespace AotProxy.Testing;

// The error-rate protection the protection tests share: a short window judged from few requests,
// the loose class "default" (the test tenant's) and the strict "enterprise", which tolerates
// enterpriseMaxErrorRate; past it, default is shed.
internal static class ErrorProtectionToml
{
    public static string For(string window, double enterpriseMaxErrorRate) => $"""

        [scheduler]
        protection_window = "{window}"
        protection_min_samples = 5

        [[classes]]
        name = "default"
        priority = 2
        max_error_rate = 0.5

        [[classes]]
        name = "enterprise"
        priority = 0
        max_error_rate = {enterpriseMaxErrorRate.ToString(System.Globalization.CultureInfo.InvariantCulture)}
        """;
}
