namespace AotProxy.Cli;

// `aotproxy health [--admin URL] [--token T]`: GET /ready, for scripts and probes. Exit 0 when it
// answers 200 (its text on stdout: "ready", or "ready, degraded: ..."), 1 when it answers
// otherwise (its text on stderr: why not) or cannot be reached.
internal static class HealthCommand
{
    public static async Task<int> RunAsync(CliArgs args, TextWriter output, TextWriter errors)
    {
        var unknown = args.FirstUnknownOption("admin", "token");
        if (unknown is not null || args.Positional.Count > 0)
        {
            await errors.WriteLineAsync(unknown is not null
                ? $"aotproxy health: unknown option --{unknown}"
                : "usage: aotproxy health [--admin URL] [--token T]").ConfigureAwait(false);
            return 2;
        }

        using var client = new AdminClient(args);
        if (await client.SendAsync(HttpMethod.Get, "/ready", null, errors).ConfigureAwait(false) is not { } answer)
        {
            return 1;
        }

        if (!answer.Ok)
        {
            await errors.WriteLineAsync($"aotproxy health: {answer.Body.Trim()}").ConfigureAwait(false);
            return 1;
        }

        await output.WriteLineAsync(answer.Body.Trim()).ConfigureAwait(false);
        return 0;
    }
}
