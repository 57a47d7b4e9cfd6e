namespace AotProxy.Admission;

// How admission ended; the names are llm_gateway_admissions_total's `outcome` label.
internal enum AdmissionDecision
{
    Admitted,       // a free slot and nobody waiting: straight on
    Granted,        // waited in a queue, then got a slot
    QueueFull,      // 503: the request's queue was full
    TimedOut,       // 503: waited max_queue_wait without a slot
    CapacityGuard,  // 503: the class's max_utilization was reached
    Shed,           // 503 class_shed: protection sheds the class while the fleet degrades (ClassProtection)
    NoCapacity,     // 503: no routable worker serves the model
    Cancelled,      // the client went away while waiting (499)
}
