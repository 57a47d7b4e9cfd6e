using System.Text;
using AotProxy.Accounting;
using AotProxy.Http;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

// The audio endpoints' multipart/form-data inspection: MultipartFormScanner's one pass over the
// pooled body, MultipartFormInspector's InspectedRequest, and MultipartForm.Write's rewrite.
public class MultipartFormTests
{
    private const string Boundary = "----formdata-undici-032451938741";
    private const string ContentType = "multipart/form-data; boundary=" + Boundary;

    // A 2-second 16 kHz mono 16-bit PCM WAV: 64,000 bytes of samples.
    private static readonly byte[] Wav = WavFile.Of(2.0);

    // The openai npm client's order: file first, then the other fields.
    private static byte[] Form(params (string Name, byte[] Value, string? FileName)[] parts) => FormWith("\r\n", Boundary, parts);

    private static byte[] FormWith(string newline, string boundary, params (string Name, byte[] Value, string? FileName)[] parts)
    {
        var body = new MemoryStream();
        foreach (var (name, value, fileName) in parts)
        {
            var head = $"--{boundary}{newline}Content-Disposition: form-data; name=\"{name}\"" + (fileName is null ? "" : $"; filename=\"{fileName}\"{newline}Content-Type: audio/wav") + newline + newline;
            body.Write(Encoding.ASCII.GetBytes(head));
            body.Write(value);
            body.Write(Encoding.ASCII.GetBytes(newline));
        }

        body.Write(Encoding.ASCII.GetBytes($"--{boundary}--{newline}"));
        return body.ToArray();
    }

    private static (string, byte[], string?) Field(string name, string value) => (name, Encoding.UTF8.GetBytes(value), null);

    private static (string, byte[], string?) File(byte[] audio) => ("file", audio, "clip.wav");

    [Fact]
    public void Inspect_FileBeforeModel_FindsEveryField()
    {
        var body = Form(File(Wav), Field("model", "whisper-large-v3"), Field("stream", "true"), Field("response_format", "json"), Field("language", "en"));

        var error = MultipartFormInspector.Inspect(body, ContentType, out var request, out var reason);

        Assert.Equal(InspectionError.None, error);
        Assert.Null(reason);
        Assert.Equal("whisper-large-v3", request.Model);
        Assert.True(request.Stream);
        Assert.False(request.IncludeUsage);
        Assert.True(request.NeedsUsageInjection);
        Assert.Equal(2, request.AudioSeconds);
        Assert.Equal(2 * AudioDuration.TokensPerSecond, request.PromptTokens);
        Assert.Equal("json"u8.ToArray(), body[request.Form.ResponseFormat]);
        Assert.Equal("en"u8.ToArray(), body[request.Form.Language]);
        Assert.Equal(Wav, body[request.Form.File]);
    }

    [Theory]
    [InlineData("multipart/form-data; boundary=\"" + Boundary + "\"")]
    [InlineData("Multipart/Form-Data;charset=utf-8; BOUNDARY=" + Boundary)]
    public void Boundary_QuotedOrAmongOtherParameters_IsRead(string contentType)
    {
        var error = MultipartFormInspector.Inspect(Form(Field("model", "m"), File(Wav)), contentType, out var request, out _);
        Assert.Equal(InspectionError.None, error);
        Assert.Equal("m", request.Model);
    }

    [Fact]
    public void Payload_HoldingTheBoundaryAsAPrefix_IsContent()
    {
        // CRLF "--" boundary followed by anything but "--" or CRLF is the upload's, not a delimiter.
        var audio = Wav.Concat(Encoding.ASCII.GetBytes($"\r\n--{Boundary}X tail")).ToArray();
        var body = Form(File(audio), Field("model", "m"));

        var error = MultipartFormInspector.Inspect(body, ContentType, out var request, out _);

        Assert.Equal(InspectionError.None, error);
        Assert.Equal(audio, body[request.Form.File]);
        Assert.Equal("m", request.Model);
    }

    [Fact]
    public void EveryPrefixOfAForm_IsRefusedWithAReason_NeverThrows()
    {
        var body = Form(Field("model", "m"), File(WavFile.Of(0.01)), Field("stream", "1"));
        for (var length = 0; length < body.Length - 4; length++)
        {
            var error = MultipartFormInspector.Inspect(body.AsSpan(0, length), ContentType, out _, out var reason);
            Assert.True(error is InspectionError.InvalidForm, $"{length}: {error}");
            Assert.False(string.IsNullOrEmpty(reason));
        }

        Assert.Equal(InspectionError.None, MultipartFormInspector.Inspect(body, ContentType, out _, out _));
    }

    [Theory]
    [InlineData("application/json", "boundary")]
    [InlineData("multipart/form-data", "boundary")]
    [InlineData("multipart/form-data; boundary=other", "opens")]
    public void NoUsableBoundary_Is400WithTheReason(string contentType, string said)
    {
        var error = MultipartFormInspector.Inspect(Form(Field("model", "m"), File(Wav)), contentType, out _, out var reason);
        Assert.Equal(InspectionError.InvalidForm, error);
        Assert.Contains(said, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingParts_AreNamed()
    {
        Assert.Equal(InspectionError.InvalidForm, MultipartFormInspector.Inspect(Form(File(Wav)), ContentType, out _, out var noModel));
        Assert.Contains("'model'", noModel, StringComparison.Ordinal);
        Assert.Equal(InspectionError.InvalidForm, MultipartFormInspector.Inspect(Form(Field("model", "m")), ContentType, out _, out var noFile));
        Assert.Contains("'file'", noFile, StringComparison.Ordinal);
        Assert.Equal(InspectionError.MissingModel, MultipartFormInspector.Inspect(Form(Field("model", ""), File(Wav)), ContentType, out _, out var param));
        Assert.Equal("model", param);
    }

    [Fact]
    public void BareLineFeeds_AreNoForm()
    {
        // RFC 2046 and python-multipart want CRLF: LF alone never closes the form.
        var body = FormWith("\n", Boundary, Field("model", "m"), File(Wav));
        Assert.Equal(InspectionError.InvalidForm, MultipartFormInspector.Inspect(body, ContentType, out _, out var reason));
        Assert.False(string.IsNullOrEmpty(reason));
    }

    [Fact]
    public void HugePartHeader_IsRefused()
    {
        var header = Encoding.ASCII.GetBytes($"--{Boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\nX-Pad: {new string('a', MultipartFormScanner.MaxPartHeaderBytes)}\r\n\r\nm\r\n");
        var body = header.Concat(Form(File(Wav))).ToArray();
        Assert.Equal(InspectionError.InvalidForm, MultipartFormInspector.Inspect(body, ContentType, out _, out var reason));
        Assert.Contains("headers are longer", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void StreamNotABoolean_IsRefused()
    {
        var body = Form(Field("model", "m"), File(Wav), Field("stream", "maybe"));
        Assert.Equal(InspectionError.InvalidForm, MultipartFormInspector.Inspect(body, ContentType, out _, out var reason));
        Assert.Contains("'stream'", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Write_AddsIncludeUsageAndCapParts_AndReplacesTheModel()
    {
        var body = Form(File(Wav), Field("model", "alias"), Field("stream", "true"));
        MultipartFormInspector.Inspect(body, ContentType, out var request, out _);
        var model = "served/model-1"u8;
        var form = request.Form;
        var rewritten = new byte[form.Length(body, includeUsage: true, cap: 123, model)];

        var written = form.Write(body, rewritten, includeUsage: true, cap: 123, model);

        Assert.Equal(rewritten.Length, written);
        var expected = Form(File(Wav), Field("model", "served/model-1"), Field("stream", "true"), Field("stream_include_usage", "true"), Field("max_completion_tokens", "123"));
        Assert.Equal(Encoding.Latin1.GetString(expected), Encoding.Latin1.GetString(rewritten));
        Assert.Equal(InspectionError.None, MultipartFormInspector.Inspect(rewritten, ContentType, out var again, out _));
        Assert.True(again.IncludeUsage);
        Assert.Equal(123, again.MaxTokens);
    }

    [Fact]
    public void Write_ReplacesTheClientsOwnValues()
    {
        var body = Form(Field("stream_include_usage", "false"), Field("max_completion_tokens", "4000"), File(Wav), Field("model", "m"), Field("stream", "true"));
        MultipartFormInspector.Inspect(body, ContentType, out var request, out _);
        var rewritten = new byte[request.Form.Length(body, includeUsage: true, cap: 7, default)];

        request.Form.Write(body, rewritten, includeUsage: true, cap: 7, default);

        var expected = Form(Field("stream_include_usage", "true"), Field("max_completion_tokens", "7"), File(Wav), Field("model", "m"), Field("stream", "true"));
        Assert.Equal(expected, rewritten);
    }

    [Fact]
    public void AudioDuration_ReadsAWavHeader_ElseEstimatesFromTheSize()
    {
        Assert.Equal(2, AudioDuration.Seconds(Wav));
        Assert.Equal(3, AudioDuration.Seconds(WavFile.Of(2.01)));
        Assert.Equal(3, AudioDuration.Seconds(new byte[(2 * AudioDuration.CompressedBytesPerSecond) + 1]));
        Assert.Equal(0, AudioDuration.Seconds([]));
    }

    [Fact]
    public void AudioUsage_DurationOnly_CountsTokensAtTheRate_StreamKeepsVllmsTokens()
    {
        var inspected = new InspectedRequest("m", false, false, 0, default, default, 0, 0, AudioSeconds: 4);
        var duration = AudioUsage.Settle(EndpointKind.Transcriptions, new Usage(0, 0, AudioSeconds: 3), inspected);
        Assert.Equal(new Usage(3 * AudioDuration.TokensPerSecond, 0, AudioSeconds: 3), duration);
        var stream = AudioUsage.Settle(EndpointKind.Translations, new Usage(154, 9), inspected);
        Assert.Equal(new Usage(154, 9, AudioSeconds: 4), stream);
        Assert.Equal(new Usage(154, 9), AudioUsage.Settle(EndpointKind.ChatCompletions, new Usage(154, 9), inspected));
    }

    [Fact]
    public void ModelPrice_ChargesAudioSeconds_AndReservesThemThroughThePromptEstimate()
    {
        var price = new ModelPrice(1000, 1000, 2000, AudioSecondNanos: 100_000);
        Assert.Equal((150 * 1000) + (3 * 100_000), price.CostNanos(new Usage(150, 0, AudioSeconds: 3)));
        var estimate = price.ForAudioEstimate(AudioDuration.TokensPerSecond);
        Assert.True(estimate.WorstCaseNanos(3 * AudioDuration.TokensPerSecond, 0) >= price.CostNanos(new Usage(3 * AudioDuration.TokensPerSecond, 0, AudioSeconds: 3)));
    }
}
