using AotProxy.Hosting;

namespace AotProxy.Tests.Hosting;

// Where the hot code's huge pages go: only the executable's own code mapping (never another
// file's, never anonymous code such as a JIT's), and only whole 2 MiB pages inside it.
public sealed class HotTextTests
{
    private const string Binary = "/opt/aotproxy/aotproxy";

    private static readonly string[] Maps =
    [
        "55d0c6800000-55d0c6823000 r--p 00000000 fe:00 11829799                   /opt/aotproxy/aotproxy",
        "55d0c6a00000-55d0c776e000 r-xp 00200000 fe:00 11829799                   /opt/aotproxy/aotproxy",
        "55d0c7800000-55d0c8264000 r--p 01000000 fe:00 11829799                   /opt/aotproxy/aotproxy",
        "7f7b84000000-7f7b84021000 rw-p 00000000 00:00 0 ",
        "7f7b848dc000-7f7b848de000 r-xp 00000000 00:00 0                          [vdso]",
        "7f7b84a00000-7f7b84b80000 r-xp 00028000 fe:00 123                        /usr/lib/x86_64-linux-gnu/libc.so.6",
    ];

    [Fact]
    public void FindCode_AnAddressInTheExecutablesCode_IsThatMapping()
    {
        Assert.Equal(((nuint)0x55d0c6a00000, (nuint)0x55d0c776e000), HotText.FindCode(Maps, 0x55d0c6b23450, Binary));
    }

    [Theory]
    [InlineData(0x55d0c6810000ul, Binary)] // the executable, but not its code
    [InlineData(0x7f7b84a10000ul, Binary)] // code, but libc's
    [InlineData(0x7f7b848dc100ul, Binary)] // anonymous code (the vDSO; a JIT's code heap)
    [InlineData(0x55d0c6b23450ul, "/opt/other/aotproxy")] // code of a file that is not this process's executable
    [InlineData(0x1000ul, Binary)] // no mapping at all
    public void FindCode_AnyOtherAddress_IsNothing(ulong address, string path)
    {
        Assert.Null(HotText.FindCode(Maps, (nuint)address, path));
    }

    [Theory]
    [InlineData(0x55d0c6a00000ul, 0x55d0c776e000ul, 4, 0x55d0c6a00000ul, 4)] // aligned start: its first 4 MiB
    [InlineData(0x55d0c6a23000ul, 0x55d0c776e000ul, 4, 0x55d0c6c00000ul, 4)] // unaligned: from the next 2 MiB
    [InlineData(0x55d0c6a00000ul, 0x55d0c776e000ul, 5, 0x55d0c6a00000ul, 4)] // whole huge pages only
    [InlineData(0x55d0c6a00000ul, 0x55d0c6d00000ul, 4, 0x55d0c6a00000ul, 2)] // never past the mapping's end
    [InlineData(0x55d0c6a23000ul, 0x55d0c6d00000ul, 4, 0x55d0c6c00000ul, 0)] // no whole huge page inside: nothing
    [InlineData(0x55d0c6a00000ul, 0x55d0c776e000ul, 0, 0x55d0c6a00000ul, 0)]
    public void Plan_IsTheWhole2MiBPagesAtTheCodesStart(ulong start, ulong end, int mib, ulong from, int lengthMiB)
    {
        var plan = HotText.Plan((nuint)start, (nuint)end, (nuint)mib << 20);
        Assert.Equal((nuint)lengthMiB << 20, plan.Length);
        if (lengthMiB > 0)
        {
            Assert.Equal((nuint)from, plan.From);
        }
    }
}
