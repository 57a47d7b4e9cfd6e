using System.Buffers;
using System.Text;
using System.Text.Json;

namespace AotProxy.Cli;

// `aotproxy tenants [list]`, `tenants create NAME [--class C ...]`, `tenants update NAME [...]`,
// `tenants delete NAME`: the admin API's /api/tenants (--admin URL, --token T, --json).
internal static class TenantsCommand
{
    // The [[tenants]] keys a create or an update takes, as flags: --max-in-flight is max_in_flight.
    private static readonly string[] Integers = ["weight", "rpm", "tpm", "max-in-flight", "budget-tokens", "monthly-budget-tokens"];
    private static readonly string[] Decimals = ["budget-usd", "monthly-budget-usd"];
    private static readonly string[] Texts = ["class", "environment"];
    private static readonly string[] Booleans = ["cache-salt", "stream-budget-cutoff", "response-cache"];

    // The list's columns: /api/tenants' fields.
    private static readonly string[] Columns = ["name", "source", "class", "weight", "models", "rpm", "tpm", "max_in_flight", "in_flight", "requests", "month_tokens", "budget_left_tokens", "budget_left_usd"];

    public static async Task<int> RunAsync(CliArgs args, TextWriter output, TextWriter errors)
    {
        var action = args.Positional.Count > 0 ? args.Positional[0] : "list";
        var name = args.Positional.Count > 1 ? args.Positional[1] : null;
        string[] known = action is "create" or "update"
            ? ["admin", "token", "json", "models", .. Integers, .. Decimals, .. Texts, .. Booleans]
            : ["admin", "token", "json"];
        if (args.FirstUnknownOption(known) is { } unknown)
        {
            await errors.WriteLineAsync($"aotproxy tenants {action}: unknown option --{unknown}").ConfigureAwait(false);
            return 2;
        }

        var exit = 0;
        switch (action)
        {
            case "list" when args.Positional.Count <= 1:
                using (var list = await AdminAnswer.CallAsync(args, HttpMethod.Get, "/api/tenants", null, output, errors, c => exit = c).ConfigureAwait(false))
                {
                    if (list is not null && !AdminTables.TryWrite("tenants", output, list.RootElement))
                    {
                        await errors.WriteLineAsync($"aotproxy tenants: {AdminTables.NotTheApi(AdminClient.BaseUrlOf(args))}").ConfigureAwait(false);
                        exit = 1;
                    }
                }

                return exit;
            case "create" or "update" when args.Positional.Count == 2:
                if (Body(args, action == "create" ? name : null, errors) is not { } body)
                {
                    return 2;
                }

                var (method, path) = action == "create"
                    ? (HttpMethod.Post, "/api/tenants")
                    : (HttpMethod.Patch, "/api/tenants/" + Uri.EscapeDataString(name!));
                return await MessageAsync(args, method, path, body, output, errors).ConfigureAwait(false);
            case "delete" when args.Positional.Count == 2:
                return await MessageAsync(args, HttpMethod.Delete, "/api/tenants/" + Uri.EscapeDataString(name!), null, output, errors).ConfigureAwait(false);
            default:
                await errors.WriteLineAsync("""
                    usage: aotproxy tenants [list]
                           aotproxy tenants create NAME [--class C] [--weight N] [--models a,b|*] [--rpm N] [--tpm N] [--max-in-flight N]
                                    [--budget-tokens N] [--monthly-budget-tokens N] [--budget-usd X] [--monthly-budget-usd X] [--environment E]
                                    [--cache-salt true|false] [--stream-budget-cutoff true|false] [--response-cache true|false]
                           aotproxy tenants update NAME [the same options: only those given change]
                           aotproxy tenants delete NAME
                           (--admin URL --token T --json)
                    """).ConfigureAwait(false);
                return 2;
        }
    }

    // The answer's message on stdout (or its JSON with --json).
    public static async Task<int> MessageAsync(CliArgs args, HttpMethod method, string path, string? body, TextWriter output, TextWriter errors)
    {
        var exit = 0;
        using var answer = await AdminAnswer.CallAsync(args, method, path, body, output, errors, c => exit = c).ConfigureAwait(false);
        if (answer is not null)
        {
            await output.WriteLineAsync(AdminAnswer.Text(answer.RootElement, "message")).ConfigureAwait(false);
        }

        return exit;
    }

    // The flags as the JSON body; null when one is not a number or a boolean (said on `errors`).
    private static string? Body(CliArgs args, string? name, TextWriter errors)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (name is not null)
            {
                json.WriteString("name", name);
            }

            foreach (var text in Texts)
            {
                if (args.Option(text) is { } value)
                {
                    json.WriteString(text, value);
                }
            }

            foreach (var flag in Booleans)
            {
                if (args.Option(flag) is not { } value)
                {
                    continue;
                }

                if (!bool.TryParse(value, out var on))
                {
                    errors.WriteLine($"--{flag}: \"{value}\" is not true or false");
                    return null;
                }

                json.WriteBoolean(flag.Replace('-', '_'), on);
            }

            if (args.Option("models") is { } models)
            {
                json.WriteStartArray("models");
                foreach (var model in models.Split(',', StringSplitOptions.TrimEntries))
                {
                    json.WriteStringValue(model);
                }

                json.WriteEndArray();
            }

            foreach (var (flags, decimalAllowed) in new[] { (Integers, false), (Decimals, true) })
            {
                foreach (var flag in flags)
                {
                    if (!AdminAnswer.TryNumber(args, flag, decimalAllowed, errors, out var number))
                    {
                        return null;
                    }

                    if (number is not null)
                    {
                        json.WritePropertyName(flag.Replace('-', '_'));
                        json.WriteRawValue(number);
                    }
                }
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static void WriteTable(TextWriter output, JsonElement tenants)
    {
        var lines = new List<string[]> { Columns };
        foreach (var t in tenants.EnumerateArray())
        {
            lines.Add([.. Columns.Select(p => AdminAnswer.Text(t, p))]);
        }

        TextTable.Write(output, lines, i => i >= 5);
        if (lines.Count == 1)
        {
            output.WriteLine("(no tenants)");
        }
    }
}
