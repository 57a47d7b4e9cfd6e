namespace AotProxy.Tests.Packaging;

// One build stage: FROM image [AS name] and the instructions up to the next FROM.
internal sealed record DockerStage(string Image, string? Name, List<DockerInstruction> Instructions)
{
    // "mcr.microsoft.com/dotnet/sdk:10.0" -> ("mcr.microsoft.com/dotnet/sdk", "10.0").
    public (string Repository, string Tag) ImageParts
    {
        get
        {
            var colon = Image.LastIndexOf(':');
            return colon > Image.LastIndexOf('/') ? (Image[..colon], Image[(colon + 1)..]) : (Image, "latest");
        }
    }

    public IEnumerable<DockerInstruction> All(string keyword) => Instructions.Where(i => i.Keyword == keyword);

    public DockerInstruction Single(string keyword) => Assert.Single(All(keyword));

    // The directory RUN and relative COPY destinations work in: the last WORKDIR.
    public string WorkDir => All("WORKDIR").LastOrDefault()?.Arguments ?? "/";
}
