using System.Text.Json;

namespace AotProxy.Tests.Packaging;

// One Dockerfile instruction, continuation lines joined: its keyword (upper case) and the rest.
internal sealed record DockerInstruction(int Line, string Keyword, string Arguments)
{
    // The arguments as words (COPY, EXPOSE, FROM: one command's worth, never an operator).
    public string[] Words => Assert.Single(ShellWords.Commands(Arguments));

    // The exec form, a JSON array (VOLUME ["/a", "/b"], ENTRYPOINT ["/app/x"]); null for the shell form.
    public string[]? ExecForm => Arguments.StartsWith('[') ? JsonSerializer.Deserialize<string[]>(Arguments) : null;

    // The value of a leading --name=value flag (COPY --from=build --chown=1654:1654), or null.
    public string? Flag(string name) =>
        Words.TakeWhile(w => w.StartsWith("--", StringComparison.Ordinal))
            .Select(w => w.Split('=', 2))
            .Where(p => p[0] == "--" + name)
            .Select(p => p.Length == 2 ? p[1] : "")
            .SingleOrDefault();

    // The words after the leading flags: a COPY's sources then its destination.
    public string[] Operands => [.. Words.SkipWhile(w => w.StartsWith("--", StringComparison.Ordinal))];
}
