namespace AotProxy.Tenancy;

// The tenant store cannot be read or written (the file, later the database), or what it holds
// conflicts with the config file at startup. The message says which and how to fix it.
internal sealed class TenantStoreException : Exception
{
    public TenantStoreException()
    {
    }

    public TenantStoreException(string message)
        : base(message)
    {
    }

    public TenantStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
