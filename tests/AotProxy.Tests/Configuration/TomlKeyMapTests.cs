using AotProxy.Configuration;

namespace AotProxy.Tests.Configuration;

// The key map follows TOML's structure with Tomlyn's lexer alone (TomlScanner): what a syntax
// tree used to tell it, it must tell from the tokens.
public sealed class TomlKeyMapTests
{
    private const string Document = """
        title = "x"
        notes = '''
        [[not_a_table]]
        name = "inside a string"
        '''
        w = [ { a = 1, b = { c = 2 } }, { d = [1,
          2] } ]
        "q.x".y = 3
        [[workers]]
        name = "a"
        [workers.extra]
        x = 1
        [[workers]]
        name = "b"
        [workers.extra]
        x = 2
        """;

    [Theory]
    [InlineData("title", 1)]
    [InlineData("notes", 2)]
    [InlineData("w[0].b.c", 6)]
    [InlineData("w[1].d[1]", 7)]
    [InlineData("q.x.y", 8)]
    [InlineData("workers", 9)]
    [InlineData("workers[0].extra.x", 12)]
    [InlineData("workers[1]", 13)]
    [InlineData("workers[1].name", 14)]
    [InlineData("workers[1].extra", 15)]
    [InlineData("workers[1].url", 13)] // not written: its table's header
    [InlineData("not_a_table", 0)]
    public void LineOf_FollowsTheStructure(string path, int line) =>
        Assert.Equal(line, TomlKeyMap.Build(Document).LineOf(path));

    [Fact]
    public void LinesOf_ManyPaths_OneAnswerEach()
    {
        var map = TomlKeyMap.Build(Document);

        Assert.Equal([14, 1, 0, 7], map.LinesOf(["workers[1].name", "title", "nowhere", "w[1].d[1]"]));
    }

    [Theory]
    [InlineData(6, 1, "w")]
    [InlineData(6, 8, "w[0]")]
    [InlineData(6, 12, "w[0].a")]
    [InlineData(6, 24, "w[0].b.c")]
    [InlineData(13, 1, "workers[1]")]
    [InlineData(3, 1, "")]
    public void KeyAt_LastKeyStartingAtOrBeforeTheColumn(int line, int column, string key) =>
        Assert.Equal(key, TomlKeyMap.Build(Document).KeyAt(line, column));

    [Fact]
    public void Headers_AreTheTablesOnly()
    {
        var map = TomlKeyMap.Build(Document);

        Assert.Equal([(8, "workers"), (10, "workers"), (12, "workers"), (14, "workers")], map.Headers);
        Assert.Empty(map.RedefinedTables);
        Assert.Null(map.Problem);
    }

    [Fact]
    public void RedefinedTables_ATableWrittenTwice()
    {
        var map = TomlKeyMap.Build("[server]\nlisten = \"a:1\"\n[[workers]]\nname = \"w\"\n[server]\nadmin_listen = \"a:2\"\n");

        Assert.Equal([(5, "server")], map.RedefinedTables);
    }

    // The line of the first token the scan cannot place (Tomlyn's parser words the error).
    [Theory]
    [InlineData("[server]\nlisten = \n", 3)]
    [InlineData("a = [1, 2\nb = 3\n", 2)]
    [InlineData("[server\nx = 1\n", 2)]
    [InlineData("x = { a = 1 b = 2 }\n", 1)]
    public void Problem_WhereTheScanStopped(string toml, int line) =>
        Assert.Equal(line, TomlKeyMap.Build(toml).Problem?.Line);

    [Theory]
    [InlineData("server", nameof(TomlShape.Table), 2)]
    [InlineData("workers", nameof(TomlShape.ArrayOfTables), 1)]
    [InlineData("limits", nameof(TomlShape.Array), 3)]
    [InlineData("routing", nameof(TomlShape.Scalar), 4)]
    public void TryGetRootShape_FirstDefinition(string name, string shape, int line)
    {
        var map = TomlKeyMap.Build("workers = [{ name = \"a\" }]\nserver.listen = \"x\"\nlimits = []\nrouting = 1\n[server.tls]\n");

        Assert.True(map.TryGetRootShape(name, out var found, out var at));
        Assert.Equal((shape, line), (found.ToString(), at));
    }
}
