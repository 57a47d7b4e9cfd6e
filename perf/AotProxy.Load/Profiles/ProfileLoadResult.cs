namespace AotProxy.Load.Profiles;

internal sealed record ProfileLoadResult(LoadProfile? Profile, IReadOnlyList<ProfileError> Errors)
{
    public static ProfileLoadResult Failure(params ProfileError[] errors) => new(null, errors);
}
