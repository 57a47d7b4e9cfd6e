using AotProxy.Admission;
using AotProxy.Limits;

namespace AotProxy.Forwarding;

// What a stream's content chunks cost as they are relayed, in one place: each chunk is debited from
// the tenant's budget before it goes out (stream_budget_cutoff: the one that does not fit is not
// sent; with [cluster], the one that needs the next fleet block waits for it), and moves the fair-share counters (StreamedCharge), batched once per relay read: one
// compare-and-swap per account per read however many chunks it held. A struct inside the relay.
internal struct ContentMeter(StreamBudget budget, StreamedCharge? charge)
{
    private StreamBudget _budget = budget;
    private long _charged; // chunks given to `charge` so far

    // Chunks that carried generated text and went to the client.
    public long Chunks { readonly get; private set; }

    public readonly StreamBudget Budget => _budget;

    // Not Taken: the chunk must not be relayed (yet, for NeedsBlock).
    public StreamDebit TryTake()
    {
        var debit = _budget.TryDebit();
        if (debit == StreamDebit.Taken)
        {
            Chunks++;
        }

        return debit;
    }

    public readonly ValueTask<long> LeaseAsync() => _budget.LeaseAsync();

    public void AddBlock(long granted) => _budget.Add(granted);

    // The end of one relay read: the chunks taken since the last flush move the counters.
    public void Flush()
    {
        if (Chunks != _charged)
        {
            charge?.Charge(Chunks - _charged);
            _charged = Chunks;
        }
    }

    public void GiveBack() => _budget.GiveBack();
}
