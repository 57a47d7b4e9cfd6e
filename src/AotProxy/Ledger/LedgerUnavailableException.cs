namespace AotProxy.Ledger;

// The ledger could not be opened at startup: the gateway must not serve without recording usage.
// The message names the file (or the native library) and says why.
internal sealed class LedgerUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
