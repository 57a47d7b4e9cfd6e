namespace AotProxy.Admission;

// Why protection sheds: the class whose tolerance the fleet passed, which one (max_error_rate or
// ttft_tolerance), its value and what was measured over the window. For the 503's message.
internal sealed record ShedReason(string ProtectedClass, string Key, double Limit, double Measured, TimeSpan Window)
{
    public const string ErrorRateKey = "max_error_rate";
    public const string TtftKey = "ttft_tolerance";
}
