namespace AotProxy.Admission;

// One tenant's or one class's share of a model pool: its virtual token counter (VTC, OSDI'24),
// and how many of its requests wait and run there. The counter only grows: by each request's
// token cost divided by the weight, so a tenant with twice the weight pays half per token.
internal sealed class FairShareAccount(string name)
{
    private double _counter;
    private int _waiting;
    private int _inFlight;
    private double _lastGrantedTenant;

    public string Name { get; } = name;

    public double Counter => Volatile.Read(ref _counter);

    public int Waiting => Volatile.Read(ref _waiting);

    public int InFlight => Volatile.Read(ref _inFlight);

    // On a class account: the counter of the tenant granted last in this class, the floor a
    // tenant is lifted to when it becomes backlogged while no other tenant of the class is.
    public double LastGrantedTenant
    {
        get => Volatile.Read(ref _lastGrantedTenant);
        set => Volatile.Write(ref _lastGrantedTenant, value);
    }

    public void Charge(double amount)
    {
        if (!(amount > 0) || double.IsInfinity(amount))
        {
            return;
        }

        var seen = Volatile.Read(ref _counter);
        while (true)
        {
            var found = Interlocked.CompareExchange(ref _counter, seen + amount, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    // A tenant that becomes backlogged starts at the least counter among those already
    // backlogged: idle time banks no credit (VTC's counter lift).
    public void LiftTo(double floor)
    {
        var seen = Volatile.Read(ref _counter);
        while (seen < floor)
        {
            var found = Interlocked.CompareExchange(ref _counter, floor, seen);
            if (found == seen)
            {
                return;
            }

            seen = found;
        }
    }

    // Returns the new count; 1 means the account just became backlogged.
    public int AddWaiting(int delta) => Interlocked.Add(ref _waiting, delta);

    public void AddInFlight(int delta) => Interlocked.Add(ref _inFlight, delta);
}
