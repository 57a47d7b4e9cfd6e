using System.Net.Http.Headers;

namespace AotProxy.FunctionalTests.Support;

// An audio endpoint's request as the openai client sends it: a multipart form with a 2-second WAV
// as `file`, the model, and the other fields given as name=value pairs, & between them.
internal static class AudioUpload
{
    public static HttpRequestMessage Post(string path, string model, string fields = "", string? key = TestGateway.Key, string? requestId = null)
    {
        var request = TestGateway.Post(path, "{}", key, requestId);
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(WavFile.Of(2.0));
        file.Headers.ContentType = new MediaTypeHeaderValue("audio/wav");
        form.Add(file, "file", "clip.wav");
        form.Add(new StringContent(model), "model");
        foreach (var field in fields.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            form.Add(new StringContent(field[(field.IndexOf('=') + 1)..]), field[..field.IndexOf('=')]);
        }

        request.Content = form;
        return request;
    }
}
