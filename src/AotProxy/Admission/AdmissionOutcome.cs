namespace AotProxy.Admission;

// How a queued request's wait ended. Exactly one of these per wait.
internal enum AdmissionOutcome
{
    Granted,
    TimedOut,

    // The client went away, or the gateway is shutting down.
    Cancelled,

    // Per-class protection shed the waiter's class while it waited (ClassProtection).
    Shed,
}
