using System.Security.Cryptography;
using System.Text;

namespace AotProxy.Tests.Configuration;

// Issue 14, item 11: a table of 100,000 tenants (14.5 MB) took the gateway from 145 MB to 1.35 GB
// while loading: Tomlyn's syntax tree (~50 times the text) and an index of every key's path,
// held while the file was bound and validated. Loading now costs a small multiple of the text.
public sealed class LargeConfigTests
{
    private const int Tenants = 10_000;

    private static readonly Lazy<string> Toml = new(() => ManyTenants(Tenants));

    [Fact]
    public void Parse_ManyTenants_AllocatesInProportionToTheText()
    {
        var toml = Toml.Value;
        var before = GC.GetAllocatedBytesForCurrentThread();

        var result = TestConfig.Load(toml);

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(Tenants, result.Snapshot.Tenants.Length);
        // Per byte of the text (UTF-16): ~44 with the syntax tree, ~7 without it (bound records,
        // the snapshot, the key index). 15 leaves room and still catches a tree.
        var perByte = allocated / (toml.Length * 2.0);
        Assert.True(perByte < 15, $"loading allocated {allocated >> 20} MiB, {perByte:F1} bytes per byte of TOML");
    }

    [Fact]
    public void Parse_ManyTenants_ErrorsNameTheirLines()
    {
        var toml = Toml.Value;
        var lines = toml.Split('\n');
        var last = Array.FindLastIndex(lines, l => l.StartsWith("rpm = ", StringComparison.Ordinal));
        var first = Array.FindIndex(lines, l => l.StartsWith("tpm = ", StringComparison.Ordinal));
        lines[last] = "rpmm = 600";
        lines[first] = "tpm = -1";

        var result = TestConfig.Load(string.Join('\n', lines));

        Assert.Equal(
            [(first + 1, "tenants[0].tpm"), (last + 1, $"tenants[{Tenants - 1}].rpmm")],
            result.Errors.Select(e => (e.Line, e.Key)));
    }

    // Each tenant as perf/tenants.py writes it: a name, one key, rpm and tpm (~145 bytes).
    private static string ManyTenants(int count)
    {
        var toml = new StringBuilder("[[workers]]\nname = \"w\"\nurl = \"http://127.0.0.1:1\"\nmodels = [\"m\"]\n");
        for (var i = 0; i < count; i++)
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"sk-tenant-{i}")));
            toml.Append($"\n[[tenants]]\nname = \"tenant-{i:D6}\"\napi_key_sha256 = [\"{hash}\"]\nrpm = 600\ntpm = 100000\n");
        }

        return toml.ToString();
    }
}
