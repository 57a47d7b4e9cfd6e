namespace AotProxy.Admission;

// A request another replica's want may preempt (AdmissionController.TryFindFleetVictim): its
// ticket, and the state it was seen armed in, which TryPreempt takes (that use only).
internal readonly record struct FleetVictim(PreemptionTicket Ticket, int Armed);
