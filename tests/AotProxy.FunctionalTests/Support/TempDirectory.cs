namespace AotProxy.FunctionalTests.Support;

// A directory of the test's own under the temp directory, deleted with everything in it.
internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("aotproxy-test-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
