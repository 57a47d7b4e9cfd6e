using AotProxy.Configuration;
using AotProxy.Routing;
using AotProxy.Tests.Configuration;

namespace AotProxy.Tests.Routing;

// Model "auto": the filter (allowlist, capabilities, context, health and a free slot), the score
// (free share of slots plus cheapness at [[prices]]) and [routing] auto_preference.
public sealed class AutoModelTests
{
    private static readonly string Fleet = """
        [[workers]]
        name = "w-cheap"
        url = "http://127.0.0.1:20001"
        models = ["cheap"]
        max_concurrency = 4

        [[workers]]
        name = "w-dear"
        url = "http://127.0.0.1:20002"
        models = ["dear"]
        max_concurrency = 4

        [[workers]]
        name = "w-embed"
        url = "http://127.0.0.1:20003"
        models = ["embed"]
        max_concurrency = 4

        [[workers]]
        name = "w-whisper"
        url = "http://127.0.0.1:20004"
        models = ["whisper"]
        max_concurrency = 4

        [[models]]
        name = "embed"
        capabilities = ["embeddings"]

        [[models]]
        name = "whisper"
        capabilities = ["transcription"]
        """ + AutoModelToml.Catalog("cheap", 1000, "dear", """["chat", "tools", "vision"]""") + """
        [[tenants]]
        name = "acme"
        api_key_sha256 = ["0000000000000000000000000000000000000000000000000000000000000000"]

        [[tenants]]
        name = "narrow"
        api_key_sha256 = ["1111111111111111111111111111111111111111111111111111111111111111"]
        models = ["cheap"]
        """;

    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Chat_BothIdle_TheCheaperWins()
    {
        var (workers, snapshot) = Start();

        Assert.Equal("cheap", Choose(workers, snapshot, ModelCapabilities.Chat).Pool!.Model);
    }

    [Fact]
    public void Score_SpareCapacityCanOutweighPrice()
    {
        var (workers, snapshot) = Start();
        Take(workers, snapshot, "cheap", 3); // 1 of 4 free: 0.25 + 0.985 (1.5% of the dearest) beats 1 (idle) + 0 (dearest)

        Assert.Equal("cheap", Choose(workers, snapshot, ModelCapabilities.Chat).Pool!.Model);
        var demand = new AutoDemand(ModelCapabilities.Chat, 100, 100);
        var dearest = snapshot.Prices.For("dear").WorstCaseNanos(100, 100);
        // cheap: 100 x 100 + 100 x 200 nano-USD = 30,000; dear: 100 x 5,000 + 100 x 15,000 = 2,000,000.
        Assert.Equal(0.25 + (1 - (30_000.0 / 2_000_000)), Score(workers.Pools["cheap"], demand, snapshot, dearest), 6);
        Assert.Equal(1 + 0, Score(workers.Pools["dear"], demand, snapshot, dearest), 6);

        // With every price equal (none), the spare share alone decides.
        var free = Start(prices: false);
        Take(free.Workers, free.Snapshot, "cheap", 1);
        Assert.Equal("dear", Choose(free.Workers, free.Snapshot, ModelCapabilities.Chat).Pool!.Model);
    }

    [Theory]
    [InlineData("Chat, Tools", "dear")]
    [InlineData("Chat, Vision", "dear")]
    [InlineData("Embeddings", "embed")]
    [InlineData("Transcription", "whisper")]
    public void Capabilities_OnlyAModelThatDeclaresThemAll(string needs, string expected)
    {
        var (workers, snapshot) = Start();

        Assert.Equal(expected, Choose(workers, snapshot, Enum.Parse<ModelCapabilities>(needs)).Pool!.Model);
    }

    // An audio upload asks for a speech model: the one that declares transcription, not the
    // cheaper chat model; a tenant that may use none has nothing that fits.
    [Theory]
    [InlineData("Transcriptions")]
    [InlineData("Translations")]
    public void Audio_PicksTheSpeechModel_AndWithoutOneNothingFits(string endpoint)
    {
        var (workers, snapshot) = Start();
        var needs = AotProxy.Http.EndpointTraits.Needs(Enum.Parse<AotProxy.Http.EndpointKind>(endpoint));

        Assert.Equal("whisper", Choose(workers, snapshot, needs).Pool!.Model);
        var narrow = snapshot.Tenants.Single(t => t.Name == "narrow");
        Assert.Equal(AutoRefusal.NothingFits, AutoModel.Choose(new AutoDemand(needs, 10, 10), narrow, workers, snapshot).Refusal);
    }

    [Fact]
    public void Context_AModelWhoseContextIsTooShortIsFilteredOut()
    {
        var (workers, snapshot) = Start();

        Assert.Equal("cheap", Choose(workers, snapshot, ModelCapabilities.Chat, prompt: 400, completion: 600).Pool!.Model);
        Assert.Equal("dear", Choose(workers, snapshot, ModelCapabilities.Chat, prompt: 400, completion: 601).Pool!.Model);
    }

    [Fact]
    public void Context_FromTheWorkersMaxModelLen_TheShortestOfThem()
    {
        var (listed, snapshot) = Start();
        listed.Find("w-dear")!.ListedModels = [new ListedModel("dear", null, null, 2048)];
        Assert.Equal(0, listed.Pools["dear"].ContextLength); // derived when the pool is built: discovery rebuilds it
        var workers = WorkerRegistry.Rebuild(listed);

        var choice = Choose(workers, snapshot, ModelCapabilities.Chat | ModelCapabilities.Tools, prompt: 2000, completion: 49);

        Assert.Equal(AutoRefusal.NothingFits, choice.Refusal);
        Assert.Equal("dear", Choose(workers, snapshot, ModelCapabilities.Chat | ModelCapabilities.Tools, prompt: 2000, completion: 48).Pool!.Model);
    }

    [Fact]
    public void Health_AndFreeSlots_ElseNoCapacity()
    {
        var (workers, snapshot) = Start();
        workers.Find("w-cheap")!.Draining = true;
        Assert.Equal("dear", Choose(workers, snapshot, ModelCapabilities.Chat).Pool!.Model);

        Take(workers, snapshot, "dear", 4);
        var full = Choose(workers, snapshot, ModelCapabilities.Chat);

        Assert.Null(full.Pool);
        Assert.Equal(AutoRefusal.NoCapacity, full.Refusal);
    }

    [Fact]
    public void Allowlist_OnlyTheTenantsModels_NothingElseFits()
    {
        var (workers, snapshot) = Start();
        var narrow = snapshot.Tenants.Single(t => t.Name == "narrow");

        Assert.Equal("cheap", AutoModel.Choose(new AutoDemand(ModelCapabilities.Chat, 10, 10), narrow, workers, snapshot).Pool!.Model);
        Assert.Equal(AutoRefusal.NothingFits, AutoModel.Choose(new AutoDemand(ModelCapabilities.Chat | ModelCapabilities.Tools, 10, 10), narrow, workers, snapshot).Refusal);
    }

    [Fact]
    public void Preference_AListedModelThatFitsBeatsABetterScore()
    {
        var (workers, snapshot) = Start(preference: """auto_preference = ["embed", "dear"]""");

        Assert.Equal("dear", Choose(workers, snapshot, ModelCapabilities.Chat).Pool!.Model);
        Assert.Equal("embed", Choose(workers, snapshot, ModelCapabilities.Embeddings).Pool!.Model);
    }

    private static double Score(WorkerPool pool, in AutoDemand demand, GatewaySnapshot snapshot, long dearest) =>
        AutoModel.Score(pool.FreeShare(snapshot), AutoModel.Cost(pool, demand, snapshot), dearest);

    private static AutoChoice Choose(WorkerSet workers, GatewaySnapshot snapshot, ModelCapabilities needs, long prompt = 100, long completion = 100) =>
        AutoModel.Choose(new AutoDemand(needs, prompt, completion), snapshot.Tenants.Single(t => t.Name == "acme"), workers, snapshot);

    private (WorkerSet Workers, GatewaySnapshot Snapshot) Start(bool prices = true, string preference = "")
    {
        var toml = prices ? Fleet : Fleet[..Fleet.IndexOf("[[prices]]", StringComparison.Ordinal)] + Fleet[Fleet.IndexOf("[[tenants]]", StringComparison.Ordinal)..];
        var snapshot = TestConfig.Valid($"[routing]\nwarmup = false\n{preference}\n{toml}");
        return (new WorkerSet([.. snapshot.Workers.Select(w => new WorkerState(w, _time))]), snapshot);
    }

    private static void Take(WorkerSet workers, GatewaySnapshot snapshot, string model, int slots)
    {
        for (var i = 0; i < slots; i++)
        {
            Assert.True(workers.Pools[model].Workers[0].TryTakeSlot(snapshot, out _));
        }
    }
}
