using AotProxy.Admin;

namespace AotProxy.Tests.Admin;

public class AdminChangesTests
{
    [Fact]
    public async Task Next_CompletesAtThePulseAfterItWasRead_AndOnlyThen()
    {
        var changes = new AdminChanges();
        var first = changes.Next;
        Assert.False(first.IsCompleted);

        changes.Pulse();
        await first.WaitAsync(TimeSpan.FromSeconds(5));
        var second = changes.Next;
        Assert.NotSame(first, second);
        Assert.False(second.IsCompleted); // a pulse before the read is not a change after it

        changes.Pulse();
        await second.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
