using AotProxy.Tenancy;

namespace AotProxy.Tests.Tenancy;

public sealed class SqliteTenantStoreTests : TenantStoreContract, IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("aotproxy-store-").FullName;

    private string PathOf => System.IO.Path.Combine(_directory, "usage.db");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    internal override ITenantStore Open() => SqliteTenantStore.Open(PathOf);

    [Fact]
    public void Open_AFileThatIsNotADatabase_IsATenantStoreExceptionNamingIt()
    {
        File.WriteAllText(PathOf, new string('x', 4096));

        var error = Assert.Throws<TenantStoreException>(() => SqliteTenantStore.Open(PathOf));

        Assert.Contains(PathOf, error.Message, StringComparison.Ordinal);
    }
}
