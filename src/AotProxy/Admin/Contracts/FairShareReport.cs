namespace AotProxy.Admin.Contracts;

// The fair-share lens, one tenant over every model pool: Share, its part of the tokens served
// since the start; Target, its weight over the weights of the tenants with traffic (what fair
// share gives a backlogged tenant); Counter, its virtual token counter (weighted service, summed
// over the pools); and what waits and runs now.
internal sealed record FairShareReport(string Tenant, int Weight, long Tokens, double Share, double Target, double Counter, int Waiting, int InFlight);
