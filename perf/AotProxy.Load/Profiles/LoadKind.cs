namespace AotProxy.Load.Profiles;

internal enum LoadKind
{
    Inject,
    Ramp,
    KeepConstant,
    Burst,
}
