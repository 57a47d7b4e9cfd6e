using System.Diagnostics;
using System.Text;

namespace AotProxy.Tests.Support;

// A bounded mutation fuzzer for the byte parsers: random inputs, and mutations of seeds taken from
// real captures (bit flips, inserted bytes and tokens, deletions, truncations, splices of two seeds).
// Each run is reproducible from its seed, which a failure reports with the input in base64.
// AOTPROXY_FUZZ_SECONDS lengthens a run (CI's default keeps each target to a couple of seconds);
// AOTPROXY_FUZZ_SEED replays one run.
internal static class Fuzz
{
    // Bytes and tokens that sit on the parsers' edges: framing, JSON syntax, invalid UTF-8,
    // escaped lone surrogates, big and negative numbers.
    private static readonly byte[][] Tokens =
    [
        "\r\n"u8.ToArray(), "\n"u8.ToArray(), "\r\n\r\n"u8.ToArray(), "0\r\n\r\n"u8.ToArray(), ":"u8.ToArray(),
        "data: "u8.ToArray(), "\n\n"u8.ToArray(), "{"u8.ToArray(), "}"u8.ToArray(), "["u8.ToArray(), "]"u8.ToArray(),
        "\""u8.ToArray(), ","u8.ToArray(), "\\"u8.ToArray(), "\\ud800"u8.ToArray(), "\\udfff\\ud800"u8.ToArray(),
        "\\u0000"u8.ToArray(), [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x00], [0x7F],
        "99999999999999999999"u8.ToArray(), "-1"u8.ToArray(), "1e309"u8.ToArray(), "null"u8.ToArray(), "true"u8.ToArray(),
        " "u8.ToArray(), "\t"u8.ToArray(), "ffffffffffffffff"u8.ToArray(), ";"u8.ToArray(), "="u8.ToArray(),
    ];

    public static TimeSpan Budget(double defaultSeconds = 2) =>
        TimeSpan.FromSeconds(double.TryParse(Environment.GetEnvironmentVariable("AOTPROXY_FUZZ_SECONDS"), out var seconds) ? seconds : defaultSeconds);

    // Runs `target` on generated inputs until the time budget or `maxInputs` is spent; returns the
    // number of inputs tried. An exception from the target fails the run with the input that caused it.
    public static int Run(IReadOnlyList<byte[]> seeds, Action<byte[]> target, TimeSpan? budget = null, int maxInputs = 2_000_000)
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("AOTPROXY_FUZZ_SEED"), out var fixedSeed) ? fixedSeed : Environment.TickCount;
        var random = new Random(seed);
        var limit = budget ?? Budget();
        var clock = Stopwatch.StartNew();
        var count = 0;
        foreach (var input in seeds)
        {
            Try(target, input, seed, count++);
        }

        while (count < maxInputs && clock.Elapsed < limit)
        {
            Try(target, Next(seeds, random), seed, count++);
        }

        return count;
    }

    public static byte[] Next(IReadOnlyList<byte[]> seeds, Random random)
    {
        if (seeds.Count == 0 || random.Next(16) == 0)
        {
            var bytes = new byte[random.Next(0, 256)];
            random.NextBytes(bytes);
            return bytes;
        }

        var input = new List<byte>(seeds[random.Next(seeds.Count)]);
        var mutations = 1 + random.Next(4);
        for (var i = 0; i < mutations; i++)
        {
            Mutate(input, seeds, random);
        }

        return [.. input];
    }

    private static void Mutate(List<byte> input, IReadOnlyList<byte[]> seeds, Random random)
    {
        var at = input.Count == 0 ? 0 : random.Next(input.Count + 1);
        switch (random.Next(7))
        {
            case 0 when input.Count > 0:
                var flip = Math.Min(at, input.Count - 1);
                input[flip] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                input.Insert(at, (byte)random.Next(256));
                break;
            case 2:
                input.InsertRange(at, Tokens[random.Next(Tokens.Length)]);
                break;
            case 3 when input.Count > 0:
                var start = Math.Min(at, input.Count - 1);
                input.RemoveRange(start, Math.Min(input.Count - start, 1 + random.Next(16)));
                break;
            case 4:
                input.RemoveRange(at, input.Count - at);
                break;
            case 5 when seeds.Count > 0:
                var other = seeds[random.Next(seeds.Count)];
                var from = random.Next(other.Length + 1);
                input.InsertRange(at, other.Skip(from).Take(random.Next(64)));
                break;
            default:
                if (input.Count > 0)
                {
                    var copy = Math.Min(at, input.Count - 1);
                    input.InsertRange(at, Enumerable.Repeat(input[copy], random.Next(1, 64)));
                }

                break;
        }
    }

    private static void Try(Action<byte[]> target, byte[] input, int seed, int index)
    {
        try
        {
            target(input);
        }
        catch (Exception e)
        {
            throw new FuzzFailure(
                $"Input {index} of fuzz seed {seed} (AOTPROXY_FUZZ_SEED={seed} replays it) threw {e.GetType().Name}: {e.Message}\n" +
                $"input (base64): {Convert.ToBase64String(input)}\ninput (text): {Encoding.UTF8.GetString(input)}",
                e);
        }
    }
}
