using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AotProxy.Hosting;

// The hot code in 2 MiB pages. A lone request on a cold core runs through a few hundred 4 KiB
// pages of code, each an iTLB miss and a page walk; in 2 MiB pages the same code is a couple of
// TLB entries. The methods a request runs come first in the code segment (IlcOrderFile), after
// the runtime's own native code, and the linker aligns that segment to 2 MiB
// (-z max-page-size, src/AotProxy/AotProxy.csproj), so its first MiBs are the hot ones. The kernel gives
// file-backed code no huge pages here (no CONFIG_READ_ONLY_THP_FOR_FS), so those MiBs are
// copied into an anonymous mapping of huge pages, made read+execute, and moved over the file's
// pages in one mremap: the same bytes at the same addresses, so nothing is relocated, and a
// thread running there (this one included) runs on. Any failure before the move leaves the
// code as it was. perf/RESULTS.md, "Issue 22: hot text in huge pages".
internal static unsafe partial class HotText
{
    // AOTPROXY_HOT_TEXT_MIB=N: how many MiB of the code segment's start go into huge pages,
    // rounded down to 2 MiB; 0 leaves the code in the file's pages (profilers that read symbols
    // from the file's mapping need that: perf/profile.sh, perf/code_order.sh).
    public const string Variable = "AOTPROXY_HOT_TEXT_MIB";

    // The runtime's native code (1.2 MB) and the ~2 MB of methods in aotproxy.order fit in 4 MiB.
    public const int DefaultMiB = 4;

    private const nuint HugePage = 2 << 20;
    private const string Libc = "libc.so.6";
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int ProtExec = 4;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MadvHugePage = 14;
    private const int MadvCollapse = 25;
    private const int MremapMayMove = 1;
    private const int MremapFixed = 2;
    private static readonly nint MapFailed = -1;

    // Returns the bytes of code now in huge pages (0: none, the code is as it was).
    public static nuint Apply()
    {
        var mib = int.TryParse(Environment.GetEnvironmentVariable(Variable), NumberStyles.None, CultureInfo.InvariantCulture, out var set) ? set : DefaultMiB;
        if (!OperatingSystem.IsLinux() || RuntimeFeature.IsDynamicCodeCompiled || Environment.SystemPageSize != 4096 || mib < 2
            || Environment.ProcessPath is not { } path)
        {
            return 0;
        }

        var here = (nuint)(delegate*<nuint>)&Apply;
        string[] maps;
        try
        {
            maps = File.ReadAllLines("/proc/self/maps");
        }
        catch (IOException)
        {
            return 0;
        }

        return FindCode(maps, here, path) is { } code && Plan(code.Start, code.End, (nuint)mib << 20) is { Length: > 0 } range
            ? Move(range.From, range.Length)
            : 0;
    }

    // The executable's own code mapping (r-xp, backed by the file at `path`) around `address`.
    internal static (nuint Start, nuint End)? FindCode(IEnumerable<string> maps, nuint address, string path)
    {
        foreach (var line in maps)
        {
            // "55d0c6a00000-55d0c7400000 r-xp 00200000 fe:00 11829799   /path/to/aotproxy"
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            var dash = fields.Length == 6 ? fields[0].IndexOf('-', StringComparison.Ordinal) : -1;
            if (dash < 0
                || !nuint.TryParse(fields[0].AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
                || !nuint.TryParse(fields[0].AsSpan(dash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end))
            {
                continue;
            }

            if (address >= start && address < end)
            {
                return fields[1] == "r-xp" && fields[4] != "0" && fields[5].Trim() == path ? (start, end) : null;
            }
        }

        return null;
    }

    // The whole 2 MiB pages inside [start, end), from the first, at most `bytes` of them.
    internal static (nuint From, nuint Length) Plan(nuint start, nuint end, nuint bytes)
    {
        var from = (start + HugePage - 1) & ~(HugePage - 1);
        var to = Math.Min(end & ~(HugePage - 1), from + (bytes & ~(HugePage - 1)));
        return to > from ? (from, to - from) : (from, 0);
    }

    private static nuint Move(nuint from, nuint length)
    {
        // One more huge page than needed, so that a 2 MiB-aligned start lies inside; the ends are given back.
        var raw = Mmap(0, length + HugePage, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (raw == MapFailed)
        {
            return 0;
        }

        var copy = ((nuint)raw + HugePage - 1) & ~(HugePage - 1);
        if (copy > (nuint)raw)
        {
            _ = Munmap(raw, copy - (nuint)raw);
        }

        _ = Munmap((nint)(copy + length), (nuint)raw + HugePage - copy);

        // MADV_COLLAPSE (Linux 6.1) fails unless every 2 MiB of the copy is one huge page: without
        // them the move would only turn shared file pages into private ones.
        if (Madvise((nint)copy, length, MadvHugePage) != 0)
        {
            _ = Munmap((nint)copy, length);
            return 0;
        }

        Buffer.MemoryCopy((void*)from, (void*)copy, length, length);
        if (Madvise((nint)copy, length, MadvCollapse) != 0
            || Mprotect((nint)copy, length, ProtRead | ProtExec) != 0
            || Mremap((nint)copy, length, length, MremapMayMove | MremapFixed, (nint)from) != (nint)from)
        {
            _ = Munmap((nint)copy, length);
            return 0;
        }

        return length;
    }

    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    [LibraryImport(Libc, EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);

    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    [LibraryImport(Libc, EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);

    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    [LibraryImport(Libc, EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int protection);

    // mremap is variadic (the new address comes only with MREMAP_FIXED); on x86-64 and arm64
    // Linux a variadic integer argument travels in the same register as a fixed one.
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    [LibraryImport(Libc, EntryPoint = "mremap", SetLastError = true)]
    private static partial nint Mremap(nint oldAddress, nuint oldLength, nuint newLength, int flags, nint newAddress);
}
