using System.Collections.Immutable;
using AotProxy.Configuration;

namespace AotProxy.Cli;

internal static class CheckConfigCommand
{
    public static int Run(CliArgs args)
    {
        if (args.Positional.Count != 1)
        {
            Console.Error.WriteLine("usage: aotproxy check-config FILE");
            return 2;
        }

        var path = args.Positional[0];
        var loaded = ConfigLoader.LoadFile(path, 1, TimeProvider.System);
        if (loaded.Snapshot is not { } snapshot)
        {
            PrintErrors(path, loaded.Errors);
            return 1;
        }

        Console.WriteLine($"{path}: ok ({snapshot.Workers.Length} workers, {snapshot.Classes.Length} classes, {snapshot.Tenants.Length} tenants)");
        return 0;
    }

    // One line per problem, "FILE:line N: key: message", like a compiler.
    public static void PrintErrors(string path, ImmutableArray<ConfigError> errors)
    {
        foreach (var error in errors)
        {
            Console.Error.WriteLine($"{path}: {error}");
        }
    }
}
