namespace AotProxy.Tests.Packaging;

// A Dockerfile read the way the builder reads it: comment lines dropped (the "# syntax="
// directive among them), lines ending in a backslash joined with the next, then one
// instruction per line, grouped into stages by FROM.
internal sealed class DockerfileModel
{
    private DockerfileModel(List<DockerStage> stages) => Stages = stages;

    public List<DockerStage> Stages { get; }

    public DockerStage Final => Stages[^1];

    public DockerStage Stage(string name) => Stages.Single(s => s.Name == name);

    public static DockerfileModel Parse(string text)
    {
        var stages = new List<DockerStage>();
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            var start = i + 1;
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            while (line.EndsWith('\\') && i + 1 < lines.Length)
            {
                var next = lines[++i].Trim();
                if (!next.StartsWith('#'))
                {
                    line = line[..^1].TrimEnd() + " " + next;
                }
            }

            var space = line.IndexOfAny([' ', '\t']);
            var keyword = (space < 0 ? line : line[..space]).ToUpperInvariant();
            var arguments = space < 0 ? "" : line[(space + 1)..].Trim();
            var instruction = new DockerInstruction(start, keyword, arguments);
            if (keyword == "FROM")
            {
                var operands = instruction.Operands;
                var name = operands.Length == 3 && operands[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? operands[2] : null;
                Assert.True(operands.Length == 1 || name is not null, $"line {start}: FROM {arguments}");
                stages.Add(new DockerStage(operands[0], name, []));
            }
            else
            {
                Assert.True(stages.Count > 0, $"line {start}: {keyword} before any FROM");
                stages[^1].Instructions.Add(instruction);
            }
        }

        return new DockerfileModel(stages);
    }
}
