namespace AotProxy.Identity;

// A Caller, or why there is none: a failure is a value, never an exception.
internal readonly record struct IdentifyResult(Caller Caller, IdentifyFailure Failure)
{
    public bool IsIdentified => Failure == IdentifyFailure.None;

    public static IdentifyResult Fail(IdentifyFailure failure) => new(default, failure);
}
