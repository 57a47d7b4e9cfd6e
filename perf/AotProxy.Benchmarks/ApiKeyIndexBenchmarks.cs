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
    private string _issuedHeader = "";
    private TimeProvider _clock = TimeProvider.System;

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
        // Beside the file's keys, one issued through the admin API (issue 17): an expiry and a
        // time-of-day window to check, and its last use to note.
        var issued = new IssuedKey("issued", [.. Convert.FromHexString(ApiKeyIndex.HashKey(Key(-1)))], "tenant-0", long.MaxValue, new KeyWindow(0, KeyWindow.MinutesPerDay - 1), new KeyUse(0));
        _index = new ApiKeyIndex(tenants, [issued]);
        _hitHeader = "Bearer " + Key(Keys / 2);
        _missHeader = "Bearer " + Key(Keys + 1);
        _issuedHeader = "Bearer " + Key(-1);
        _clock = new FrozenClock(new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero));
        if (FindHit() is null || FindMiss() is not null || FindIssuedHit() is null)
        {
            throw new InvalidOperationException("key index does not answer as intended");
        }
    }

    [Benchmark]
    public object? FindHit() => _index.Find(ApiKeyIndex.BearerToken(_hitHeader));

    [Benchmark]
    public object? FindMiss() => _index.Find(ApiKeyIndex.BearerToken(_missHeader));

    // The identify stage's call: a file key, and an issued one (expiry, window, last use).
    [Benchmark]
    public object? FindHitWithClock() => _index.Find(ApiKeyIndex.BearerToken(_hitHeader), _clock, out _, out _);

    [Benchmark]
    public object? FindIssuedHit() => _index.Find(ApiKeyIndex.BearerToken(_issuedHeader), _clock, out _, out _);

    [Benchmark]
    public int BearerToken() => ApiKeyIndex.BearerToken(_hitHeader).Length;

    // A fixed instant: the issued key's last use is noted once, as for requests within one second.
    private sealed class FrozenClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    // 51 characters, the length of an OpenAI-style project key.
    private static string Key(int i) => $"sk-proj-{i:D8}-abcdefghijklmnopqrstuvwxyz0123456";
}
