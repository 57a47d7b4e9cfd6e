using System.Text;
using AotProxy.Inspection;
using AotProxy.Tests.Support;

namespace AotProxy.Tests.Inspection;

// The request inspector under random and mutated bodies (Fuzz: AOTPROXY_FUZZ_SECONDS, AOTPROXY_FUZZ_SEED).
// Its contract: it never throws, it returns an InspectionError, and what it returns with None is
// usable as is: a model, splices inside the body, and a usage splice that yields a body that asks
// for usage and still inspects the same.
public sealed class RequestInspectorFuzzTests
{
    // Request bodies as clients send them, and the captured OpenAI/vLLM JSON bodies, whose nesting,
    // escapes and numbers are real.
    private static readonly string[] Requests =
    [
        """{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hi \"there\" \u00e9\ud83d\ude00"}],"stream":true,"max_tokens":64}""",
        """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"describe"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],"stream":true,"stream_options":{"include_usage":false,"continuous_usage_stats":false},"max_completion_tokens":100,"user":"alice"}""",
        """{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"integer"}}}}}],"stream":false,"stream_options":null,"max_tokens":null,"temperature":0.7,"n":1}""",
        """{"stream_options":{"include_usage":true},"model":"m","prompt":["Once upon a time",[1,2,3]],"stream":true,"max_tokens":1e3}""",
        """{"model":"text-embedding","input":["a","b"],"encoding_format":"float","user":7}""",
        """{ "model" : "m" , "stream" : true , "stream_options" : { } , "priority" : -2147483648 }""",
    ];

    [Fact]
    public void Inspect_RandomAndMutatedBodies_KeepsItsContract()
    {
        var seeds = Requests.Select(Encoding.UTF8.GetBytes)
            .Concat(Directory.GetFiles(Path.Combine(Fixtures.Directory, "openai"), "*.json").Select(File.ReadAllBytes))
            .ToList();

        var inputs = Fuzz.Run(seeds, CheckContract);

        Assert.True(inputs > seeds.Count, $"only {inputs} inputs ran");
    }

    private static void CheckContract(byte[] body)
    {
        var error = RequestInspector.Inspect(body, out var request, out var param);
        Check(Enum.IsDefined(error), $"undefined InspectionError {error}");
        Check(param is not null || error is InspectionError.None or InspectionError.InvalidJson or InspectionError.NotAnObject, $"{error} without the parameter it is about");

        if (error != InspectionError.None)
        {
            return;
        }

        Check(!string.IsNullOrEmpty(request.Model), "no model");
        Check(request.MaxTokens >= 0, "negative max_tokens");
        var priority = request.PrioritySplice.Offset;
        Check(priority > 0 && priority < body.Length && body[priority] == (byte)'}', "the priority splice is not at the root's closing brace");
        var splice = request.UsageSplice;
        Check(splice.Offset >= 0 && splice.RemoveLength >= 0 && splice.Offset + splice.RemoveLength <= body.Length, "the usage splice is outside the body");
        var tokens = request.MaxTokensSplice;
        Check(tokens.MaxTokensOffset + tokens.MaxTokensLength <= body.Length && tokens.MaxCompletionTokensOffset + tokens.MaxCompletionTokensLength <= body.Length, "a max_tokens splice is outside the body");
        if (!request.NeedsUsageInjection)
        {
            return;
        }

        // Only a well-formed request is spliced, and the splice makes one that asks for usage.
        var spliced = new byte[splice.NewLength(body.Length)];
        splice.Apply(body, spliced);
        var again = RequestInspector.Inspect(spliced, out var after, out _);
        Check(again == InspectionError.None, $"the spliced body inspects as {again}");
        Check(after.IncludeUsage && !after.NeedsUsageInjection, "the spliced body does not ask for usage");
        Check(after.Model == request.Model && after.Stream && after.MaxTokens == request.MaxTokens, "the splice changed another field");
    }

    // Fuzz reports the input with the failed assertion.
    private static void Check(bool condition, string what) => Assert.True(condition, what);
}
