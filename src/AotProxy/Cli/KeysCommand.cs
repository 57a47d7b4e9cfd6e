using System.Buffers;
using System.Text;
using System.Text.Json;

namespace AotProxy.Cli;

// `aotproxy keys list TENANT`, `keys issue TENANT [--label L] [--expires-at T] [--window HH:MM-HH:MM]`,
// `keys revoke TENANT ID`, `keys rotate TENANT ID --valid-until T [--label L]`: the admin API's
// /api/tenants/{name}/keys. An issued key is printed once; nothing shows it again.
internal static class KeysCommand
{
    private static readonly string[] Columns = ["id", "label", "state", "created", "expires_at", "window", "valid_until", "revoked_at", "last_used"];

    public static async Task<int> RunAsync(CliArgs args, TextWriter output, TextWriter errors)
    {
        var action = args.Positional.Count > 0 ? args.Positional[0] : "";
        string[] known = action switch
        {
            "issue" => ["admin", "token", "json", "label", "expires-at", "window"],
            "rotate" => ["admin", "token", "json", "label", "valid-until"],
            _ => ["admin", "token", "json"],
        };
        if (args.FirstUnknownOption(known) is { } unknown)
        {
            await errors.WriteLineAsync($"aotproxy keys {action}: unknown option --{unknown}").ConfigureAwait(false);
            return 2;
        }

        var tenant = args.Positional.Count > 1 ? "/api/tenants/" + Uri.EscapeDataString(args.Positional[1]) + "/keys" : "";
        var exit = 0;
        switch (action)
        {
            case "list" when args.Positional.Count == 2:
                using (var list = await AdminAnswer.CallAsync(args, HttpMethod.Get, tenant, null, output, errors, c => exit = c).ConfigureAwait(false))
                {
                    if (list is not null)
                    {
                        var lines = new List<string[]> { Columns };
                        lines.AddRange(list.RootElement.EnumerateArray().Select(k => Columns.Select(c => AdminAnswer.Text(k, c)).ToArray()));
                        TextTable.Write(output, lines, _ => false);
                        if (lines.Count == 1)
                        {
                            await output.WriteLineAsync("(no keys issued)").ConfigureAwait(false);
                        }
                    }
                }

                return exit;
            case "issue" when args.Positional.Count == 2:
                return await IssuedAsync(args, tenant, Body(("label", args.Option("label")), ("expires_at", args.Option("expires-at")), ("window", args.Option("window"))), output, errors).ConfigureAwait(false);
            case "rotate" when args.Positional.Count == 3:
                if (args.Option("valid-until") is null)
                {
                    await errors.WriteLineAsync("aotproxy keys rotate: --valid-until T is required (RFC 3339: the old key's last moment)").ConfigureAwait(false);
                    return 2;
                }

                var rotate = $"{tenant}/{Uri.EscapeDataString(args.Positional[2])}/rotate";
                return await IssuedAsync(args, rotate, Body(("valid_until", args.Option("valid-until")), ("label", args.Option("label"))), output, errors).ConfigureAwait(false);
            case "revoke" when args.Positional.Count == 3:
                return await TenantsCommand.MessageAsync(args, HttpMethod.Delete, $"{tenant}/{Uri.EscapeDataString(args.Positional[2])}", null, output, errors).ConfigureAwait(false);
            default:
                await errors.WriteLineAsync("""
                    usage: aotproxy keys list TENANT
                           aotproxy keys issue TENANT [--label L] [--expires-at 2026-12-31T00:00:00Z] [--window 09:00-17:00]
                           aotproxy keys revoke TENANT ID
                           aotproxy keys rotate TENANT ID --valid-until 2026-12-01T00:00:00Z [--label L]
                           (--admin URL --token T --json)
                    """).ConfigureAwait(false);
                return 2;
        }
    }

    // The new key, once: "id" and "key" lines (or the JSON with --json).
    private static async Task<int> IssuedAsync(CliArgs args, string path, string body, TextWriter output, TextWriter errors)
    {
        var exit = 0;
        using var issued = await AdminAnswer.CallAsync(args, HttpMethod.Post, path, body, output, errors, c => exit = c).ConfigureAwait(false);
        if (issued is not null)
        {
            var key = issued.RootElement;
            await output.WriteLineAsync($"""
                tenant:     {AdminAnswer.Text(key, "tenant")}
                id:         {AdminAnswer.Text(key, "id")}
                key:        {AdminAnswer.Text(key, "key")}
                expires_at: {AdminAnswer.Text(key, "expires_at")}
                window:     {AdminAnswer.Text(key, "window")}
                (the key is shown only now: store it)
                """).ConfigureAwait(false);
        }

        return exit;
    }

    // The given (name, value) pairs as a JSON object of strings.
    private static string Body(params (string Name, string? Value)[] fields)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var (name, value) in fields)
            {
                if (value is not null)
                {
                    json.WriteString(name, value);
                }
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
