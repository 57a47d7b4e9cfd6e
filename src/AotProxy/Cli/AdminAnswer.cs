using System.Text.Json;

namespace AotProxy.Cli;

// What the tenants, keys and audit commands share: one call of the admin API, its failure said in
// one line (the OpenAI-shaped error's message) with exit code 1, its body raw for --json or
// parsed for a table.
internal static class AdminAnswer
{
    // The parsed body, or null when the command failed (said on `errors`; exitCode set).
    public static async Task<JsonDocument?> CallAsync(CliArgs args, HttpMethod method, string path, string? json, TextWriter output, TextWriter errors, Action<int> exitCode)
    {
        using var client = new AdminClient(args);
        if (await client.SendAsync(method, path, json, errors).ConfigureAwait(false) is not { } answer)
        {
            exitCode(1);
            return null;
        }

        if (!answer.Ok)
        {
            await errors.WriteLineAsync($"aotproxy {args.Command}: {Message(answer.Body)}").ConfigureAwait(false);
            exitCode(1);
            return null;
        }

        exitCode(0);
        if (args.Flag("json"))
        {
            await output.WriteLineAsync(answer.Body.TrimEnd()).ConfigureAwait(false);
            return null;
        }

        var parsed = TryParse(answer.Body);
        if (parsed is null)
        {
            await errors.WriteLineAsync($"aotproxy {args.Command}: {AdminTables.NotTheApi(client.BaseUrl)}").ConfigureAwait(false);
            exitCode(1);
        }

        return parsed;
    }

    // The body as JSON; null when it is not (an address that is not the admin API answered).
    public static JsonDocument? TryParse(string body)
    {
        try
        {
            return JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    // A --NAME value that must be an integer (or a number, when decimal): null and said when it is not.
    public static bool TryNumber(CliArgs args, string name, bool decimalAllowed, TextWriter errors, out string? json)
    {
        json = args.Option(name);
        if (json is null)
        {
            return true;
        }

        var ok = decimalAllowed
            ? double.TryParse(json, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
            : long.TryParse(json, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _);
        if (!ok)
        {
            errors.WriteLine($"aotproxy {args.Command}: --{name} must be {(decimalAllowed ? "a number" : "an integer")} (got \"{json}\")");
        }

        return ok;
    }

    public static string Text(JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) ? value.ValueKind switch
        {
            JsonValueKind.Null => "-",
            JsonValueKind.String => value.GetString() is { Length: > 0 } text ? text : "-",
            JsonValueKind.Array => string.Join(',', value.EnumerateArray().Select(v => v.ToString())),
            _ => value.GetRawText(),
        } : "-";

    public static string Message(string body)
    {
        try
        {
            using var error = JsonDocument.Parse(body);
            return error.RootElement.GetProperty("error").GetProperty("message").GetString() ?? body;
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return body;
        }
    }
}
