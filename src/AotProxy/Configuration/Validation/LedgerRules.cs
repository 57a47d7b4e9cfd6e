namespace AotProxy.Configuration.Validation;

// [ledger]: the usage ledger's file and its batches.
internal static class LedgerRules
{
    // ledger.*: a minute of rows is the most a kill -9 should lose; 100k rows a commit of ~0.2 s;
    // 2^24 queued rows ~2.5 GB, past any memory a gateway should hold for its ledger.
    private static readonly TimeSpan MaxLedgerInterval = TimeSpan.FromMinutes(1);
    private const int MaxLedgerBatch = 100_000;
    private const int MaxLedgerQueue = 1 << 24;

    public static LedgerModel Validate(ValidationContext context, LedgerConfig ledger)
    {
        context.Unknown("ledger", ledger.Unknown);
        var interval = context.Positive("ledger.batch_interval", ledger.BatchInterval);
        if (interval > MaxLedgerInterval)
        {
            context.Error("ledger.batch_interval", $"must be at most {Duration.Format(MaxLedgerInterval)} (got {ledger.BatchInterval}); a kill -9 loses up to one interval of rows");
        }

        if (ledger.BatchSize is < 1 or > MaxLedgerBatch)
        {
            context.Error("ledger.batch_size", $"must be 1 to {MaxLedgerBatch} (got {ledger.BatchSize})");
        }

        if (ledger.QueueCapacity is < 1 or > MaxLedgerQueue)
        {
            context.Error("ledger.queue_capacity", $"must be 1 to {MaxLedgerQueue} (got {ledger.QueueCapacity})");
        }
        else if (ledger.QueueCapacity < ledger.BatchSize)
        {
            context.Error("ledger.queue_capacity", $"must be at least ledger.batch_size ({ledger.BatchSize}), or a full batch can never wait in it");
        }

        var path = ledger.Path.Trim();
        if (path.Length > 0)
        {
            if (path.Contains('\0', StringComparison.Ordinal) || path.EndsWith('/') || path.EndsWith('\\'))
            {
                context.Error("ledger.path", $"\"{ledger.Path}\" is not a file name");
            }
            else
            {
                // Relative to the config file, so `serve` finds the same ledger from any working directory.
                var baseDirectory = System.IO.Path.IsPathRooted(context.Source) ? System.IO.Path.GetDirectoryName(context.Source) : null;
                path = System.IO.Path.GetFullPath(path, baseDirectory ?? Directory.GetCurrentDirectory());
            }
        }

        return new LedgerModel(path, interval, ledger.BatchSize, ledger.QueueCapacity);
    }
}
