using AotProxy.Configuration;

namespace AotProxy.Cli;

internal static class ServeCommand
{
    public const string DefaultConfigPath = "configs/aotproxy.toml";

    public static async Task<int> RunAsync(CliArgs args)
    {
        var path = Path.GetFullPath(args.Option("config") ?? args.Positional.FirstOrDefault() ?? DefaultConfigPath);
        var loaded = ConfigLoader.LoadFile(path, 1, TimeProvider.System);
        if (loaded.Snapshot is null)
        {
            CheckConfigCommand.PrintErrors(path, loaded.Errors);
            return 2;
        }

        using var loggerFactory = Logging.Create();
        var store = new ConfigStore(loaded.Snapshot, path, TimeProvider.System, loggerFactory.CreateLogger("AotProxy.Configuration"));
        return await GatewayRunner.RunAsync(store, watch: true, loggerFactory).ConfigureAwait(false);
    }
}
