namespace AotProxy.Testing;

// The model "auto" tests' two priced models, for the unit tests' fleet and the binary's: `cheap`
// (chat only, its context cheapContext tokens) and `dear` (with dearCapabilities, a TOML array),
// fifty times its price.
internal static class AutoModelToml
{
    public static string Catalog(string cheap, int cheapContext, string dear, string dearCapabilities) => $"""

        [[models]]
        name = "{cheap}"
        capabilities = ["chat"]
        context_length = {cheapContext}

        [[models]]
        name = "{dear}"
        capabilities = {dearCapabilities}

        [[prices]]
        model = "{cheap}"
        input_per_million = 0.1
        output_per_million = 0.2

        [[prices]]
        model = "{dear}"
        input_per_million = 5
        output_per_million = 15

        """;
}
