namespace AotProxy.Admission;

// One tenant's or one class's share of a model pool: its virtual token counter (VTC, OSDI'24),
// and how many of its requests wait and run there. The counter grows by each request's token
// cost divided by the weight, so a tenant with twice the weight pays half per token. A grant
// charges the prompt estimate; the usage settles it, up or down (Settle).
//
// Lifts and refunds: a tenant that becomes backlogged is lifted to the least backlogged
// counter (LiftTo), so idle time banks no credit. The lift also forgives whatever of the counter
// lay below that floor, over-estimates of requests still running included: at 1,000 with 900 of
// it over-estimated and lifted to 1,500, the exact count (100, lifted) is 1,500 too, and
// refunding the 900 afterwards would hand back the credit the lift took away. So the account
// keeps its lifts' floor, moved by every charge since, as _aboveFloor (counter - floor: a charge
// moves both). A refund of a charge made after the last lift (Lifts unchanged since the grant
// read it) is given in full, as the floor holds that charge too; one made before takes back at
// most what stands above the floor. The counter is then never below what charging the exact cost
// up front would have given (x -> max(x + a, floor) composes); with more than one lift during a
// request it may stay above it, by at most that request's over-estimate.
internal sealed class FairShareAccount(string name)
{
    // Lifts and refunds of charges made before a lift change the counter and the floor together.
    private readonly Lock _floorLock = new();
    private double _counter;
    private double _aboveFloor = double.PositiveInfinity; // no lift yet: no floor
    private long _lifts;
    private int _waiting;
    private int _inFlight;
    private double _lastGrantedTenant;
    private long _preemptions;

    public string Name { get; } = name;

    public double Counter => Volatile.Read(ref _counter);

    public int Waiting => Volatile.Read(ref _waiting);

    public int InFlight => Volatile.Read(ref _inFlight);

    // On a class account: its requests preempted before their first byte (llm_gateway_preemptions_total).
    public long Preemptions => Interlocked.Read(ref _preemptions);

    public void CountPreemption() => Interlocked.Increment(ref _preemptions);

    // On a class account: the counter of the tenant granted last in this class, the floor a
    // tenant is lifted to when it becomes backlogged while no other tenant of the class is.
    public double LastGrantedTenant
    {
        get => Volatile.Read(ref _lastGrantedTenant);
        set => Volatile.Write(ref _lastGrantedTenant, value);
    }

    // How many times the account was lifted (LiftTo). A grant reads it before it charges
    // (GrantCharge.At), so that its refund knows whether a lift came after the charge.
    public long Lifts => Interlocked.Read(ref _lifts);

    public void Charge(double amount)
    {
        if (!(amount > 0) || double.IsInfinity(amount))
        {
            return;
        }

        Add(amount);
    }

    // The usage's cost less the admission charge, per weight (GrantCharge.Settlement): charged
    // when positive, refunded when negative. liftsAtCharge: Lifts as the grant read it.
    public void Settle(double amount, long liftsAtCharge)
    {
        if (amount >= 0)
        {
            Charge(amount);
        }
        else
        {
            Refund(-amount, liftsAtCharge);
        }
    }

    // Gives back an over-charge: all of it if no lift came after the charge, else only what the
    // counter stands above its floor (see the class comment).
    public void Refund(double amount, long liftsAtCharge)
    {
        if (!(amount > 0) || double.IsInfinity(amount))
        {
            return;
        }

        lock (_floorLock)
        {
            if (liftsAtCharge != _lifts)
            {
                amount = Math.Min(amount, _aboveFloor);
                _aboveFloor -= amount;
            }

            Add(-amount);
        }
    }

    // A tenant that becomes backlogged starts at the least counter among those already
    // backlogged: idle time banks no credit (VTC's counter lift). The floor rises to `floor`
    // whether or not the counter had to.
    public void LiftTo(double floor)
    {
        lock (_floorLock)
        {
            var seen = Volatile.Read(ref _counter);
            while (true)
            {
                // Compared and swapped even when it stays: `seen` is then the counter at the lift.
                var found = Interlocked.CompareExchange(ref _counter, Math.Max(seen, floor), seen);
                if (found == seen)
                {
                    break;
                }

                seen = found;
            }

            // A charge after this point moves the counter and the floor alike: _aboveFloor holds.
            // Every lift counts, even one below the floor: a refund of a charge made before it
            // may bring the counter down towards it, and must stop there.
            _aboveFloor = Math.Min(_aboveFloor, Math.Max(seen - floor, 0));
            Interlocked.Increment(ref _lifts);
        }
    }

    // Returns the new count; 1 means the account just became backlogged.
    public int AddWaiting(int delta) => Interlocked.Add(ref _waiting, delta);

    public void AddInFlight(int delta) => Interlocked.Add(ref _inFlight, delta);

    private void Add(double amount)
    {
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
}
