using System.Collections.Immutable;
using AotProxy.Configuration;
using AotProxy.Identity;
using BenchmarkDotNet.Attributes;

namespace AotProxy.Benchmarks;

// Results are returned as object: TenantModel is internal, benchmark methods are public.
// The identify stage: "Authorization: Bearer sk-..." -> tenant, by SHA-256 digest.
[MemoryDiagnoser]
public class ApiKeyIndexBenchmarks
{
    private ApiKeyIndex _index = new([]);
    private string _hitHeader = "";
    private string _missHeader = "";

    [Params(1, 100, 10_000)]
    public int Keys { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        // One tenant per key: the worst case for the index, every key its own entry.
        var tenants = Enumerable.Range(0, Keys)
            .Select(i => new TenantModel(
                $"tenant-{i}",
                "default",
                1,
                [[.. Convert.FromHexString(ApiKeyIndex.HashKey(Key(i)))]],
                ["*"],
                0,
                0,
                0))
            .ToImmutableArray();
        _index = new ApiKeyIndex(tenants);
        _hitHeader = "Bearer " + Key(Keys / 2);
        _missHeader = "Bearer " + Key(Keys + 1);
        if (FindHit() is null || FindMiss() is not null)
        {
            throw new InvalidOperationException("key index does not answer as intended");
        }
    }

    [Benchmark]
    public object? FindHit() => _index.Find(ApiKeyIndex.BearerToken(_hitHeader));

    [Benchmark]
    public object? FindMiss() => _index.Find(ApiKeyIndex.BearerToken(_missHeader));

    [Benchmark]
    public int BearerToken() => ApiKeyIndex.BearerToken(_hitHeader).Length;

    // 51 characters, the length of an OpenAI-style project key.
    private static string Key(int i) => $"sk-proj-{i:D8}-abcdefghijklmnopqrstuvwxyz0123456";
}
