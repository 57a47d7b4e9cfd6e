using System.Text.Unicode;

namespace AotProxy.Inspection;

// The inspect step of the audio endpoints (/v1/audio/transcriptions, /translations): their body
// is a multipart/form-data upload, read once into the request's pooled buffer like a JSON body.
// MultipartFormScanner finds the fields among the parts wherever they are (the openai client
// sends `file` before `model`); the prompt estimate is the audio's seconds at
// AudioDuration.TokensPerSecond, and a stream without stream_include_usage gets it added
// (MultipartForm.Write), as chat gets stream_options.include_usage.
internal static class MultipartFormInspector
{
    // error: the 400's reason (InspectionError.InvalidForm), or the field's name for the others.
    public static InspectionError Inspect(ReadOnlySpan<byte> body, string? contentType, out InspectedRequest request, out string? error)
    {
        request = default;
        Span<byte> boundary = stackalloc byte[MultipartFormScanner.MaxBoundaryLength];
        var boundaryLength = MultipartFormScanner.Boundary(contentType, boundary);
        if (boundaryLength == 0)
        {
            error = "the Content-Type must be multipart/form-data with a boundary of 1 to 70 ASCII characters";
            return InspectionError.InvalidForm;
        }

        error = MultipartFormScanner.Scan(body, boundary[..boundaryLength], out var form);
        if (error is not null)
        {
            return InspectionError.InvalidForm;
        }

        var modelBytes = body[form.Model];
        if (modelBytes.IsEmpty)
        {
            error = "model";
            return InspectionError.MissingModel;
        }

        if (!Utf8.IsValid(modelBytes) || modelBytes.IndexOfAnyInRange((byte)0, (byte)0x1F) >= 0)
        {
            error = "model";
            return InspectionError.InvalidText;
        }

        var seconds = AudioDuration.Seconds(body[form.File]);
        request = new InspectedRequest(
            RequestInspector.ModelName(modelBytes),
            form.Stream,
            form.IncludeUsageValue,
            form.MaxTokens ?? 0,
            form.Stream ? new UsageSplice(form.CloseOffset, 0, UsageSpliceKind.FormField) : default,
            default,
            0, // no prefix: uploads share no prompt prefix (WAV headers alike would send every one to one worker)
            0,
            PromptTokens: seconds * AudioDuration.TokensPerSecond,
            Form: form,
            AudioSeconds: seconds);
        return InspectionError.None;
    }
}
