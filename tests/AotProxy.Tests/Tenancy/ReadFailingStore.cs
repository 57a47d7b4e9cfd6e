using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

// A real SqliteTenantStore whose reads fail while FailReads is set: a store that commits a change
// and then does not answer the read that follows it.
internal sealed class ReadFailingStore(ITenantStore inner) : DelegatingTenantStore(inner)
{
    public volatile bool FailReads;

    public override StoreContents Load() => FailReads ? throw Gone() : base.Load();

    public override long Version() => FailReads ? throw Gone() : base.Version();

    private TenantStoreException Gone() => new($"{Description} cannot be read: gone");
}
