using System.Globalization;

namespace AotProxy.Load.Cli;

// `run PROFILE.toml [--target URL] [--key KEY] [--out DIR] [--duration-scale F] [--rate-scale F] [--requests FILE]`
internal sealed record LoadArgs(string Profile, Uri? Target, string? Key, string? OutDir, double DurationScale, double RateScale, string? RequestsFile = null)
{
    public const string Usage = """
        usage: aotproxy-load run PROFILE.toml [--target URL] [--key KEY] [--out DIR]
                                              [--duration-scale F] [--rate-scale F] [--requests FILE]
          --target URL          base URL of the gateway (default: [scenario] target)
          --key KEY             API key for [[mix]] entries without their own (default: [scenario] api_key)
          --out DIR             where PROFILE.md and PROFILE.json go (default: perf/reports)
          --duration-scale F    multiply every duration and burst window, e.g. 0.05 for CI
          --rate-scale F        multiply every inject/ramp rate and burst size
          --requests FILE       also write one CSV line per request (times from the schedule's start)
        exit code: 0 all thresholds passed, 2 a threshold failed, 1 usage or profile error
        """;

    public static bool TryParse(IReadOnlyList<string> args, out LoadArgs? parsed, out string error)
    {
        parsed = null;
        error = "";
        if (args.Count < 2 || args[0] != "run")
        {
            error = args.Count == 0 ? "missing command" : args[0] == "run" ? "missing PROFILE.toml" : $"unknown command \"{args[0]}\"";
            return false;
        }

        var profile = args[1];
        Uri? target = null;
        string? key = null;
        string? outDir = null;
        double durationScale = 1;
        double rateScale = 1;
        string? requests = null;
        for (var i = 2; i < args.Count; i++)
        {
            var flag = args[i];
            if (i + 1 >= args.Count)
            {
                error = $"{flag} needs a value";
                return false;
            }

            var value = args[++i];
            switch (flag)
            {
                case "--target":
                    if (!Uri.TryCreate(value, UriKind.Absolute, out target) || (target.Scheme != Uri.UriSchemeHttp && target.Scheme != Uri.UriSchemeHttps))
                    {
                        error = $"--target: \"{value}\" is not an http:// or https:// URL";
                        return false;
                    }

                    break;
                case "--key":
                    key = value;
                    break;
                case "--out":
                    outDir = value;
                    break;
                case "--requests":
                    requests = value;
                    break;
                case "--duration-scale":
                    if (!TryScale(value, out durationScale))
                    {
                        error = $"--duration-scale: \"{value}\" is not a positive number";
                        return false;
                    }

                    break;
                case "--rate-scale":
                    if (!TryScale(value, out rateScale))
                    {
                        error = $"--rate-scale: \"{value}\" is not a positive number";
                        return false;
                    }

                    break;
                default:
                    error = $"unknown option \"{flag}\"";
                    return false;
            }
        }

        parsed = new LoadArgs(profile, target, key, outDir, durationScale, rateScale, requests);
        return true;
    }

    private static bool TryScale(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value > 0 && value <= 1000;
}
