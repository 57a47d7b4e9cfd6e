namespace AotProxy.Cli;

// `aotproxy COMMAND [positional…] [--name value…]`. Small on purpose: the CLI has a handful of
// flags, and a parser library would cost binary size and reflection.
internal sealed class CliArgs
{
    private readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);

    private CliArgs(string command, List<string> positional)
    {
        Command = command;
        Positional = positional;
    }

    public string Command { get; }

    public List<string> Positional { get; }

    public string? Error { get; private set; }

    public static CliArgs Parse(string[] args)
    {
        var command = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "serve";
        var start = args.Length > 0 && !args[0].StartsWith('-') ? 1 : 0;
        var parsed = new CliArgs(command, []);
        for (var i = start; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "--help" or "-h" or "--version" or "--json" or "--once")
            {
                parsed._options[arg.TrimStart('-')] = "true";
            }
            else if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                var eq = arg.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    parsed._options[arg[2..eq]] = arg[(eq + 1)..];
                }
                else if (i + 1 < args.Length)
                {
                    parsed._options[arg[2..]] = args[++i];
                }
                else
                {
                    parsed.Error = $"{arg} needs a value";
                }
            }
            else
            {
                parsed.Positional.Add(arg);
            }
        }

        return parsed;
    }

    public string? Option(string name) => _options.GetValueOrDefault(name);

    public bool Flag(string name) => _options.ContainsKey(name);

    // The first option outside `known`, so that a mistyped flag is an error rather than ignored.
    public string? FirstUnknownOption(params ReadOnlySpan<string> known)
    {
        foreach (var name in _options.Keys)
        {
            if (!known.Contains(name))
            {
                return name;
            }
        }

        return null;
    }
}
