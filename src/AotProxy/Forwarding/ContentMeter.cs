using AotProxy.Accounting;
using AotProxy.Admission;
using AotProxy.Limits;

namespace AotProxy.Forwarding;

// What a stream's content chunks cost as they are relayed, in one place: each chunk is debited from
// the tenant's budget before it goes out (stream_budget_cutoff: the one that does not fit is not
// sent; with [cluster], the one that needs the next fleet block waits for it), and moves the
// fair-share counters (StreamedCharge), batched once per relay read: one compare-and-swap per
// account per read however many chunks it held. One per pooled ProxyRequest, started for each
// attempt: the stream's 128 B budget lives here until it settles (LimitStage.Settle), not in the
// forwarder's state and result, which a stream held about five copies of (perf/RESULTS.md, issue 22,
// second pass). The attempt's usage is here too, for the same reason (third pass).
internal sealed class ContentMeter(StreamedCharge? charge = null)
{
    private StreamBudget _budget;
    private long _charged; // chunks given to `charge` so far

    // What the stream debited from its tenant's budgets (after a failed attempt: given back, nothing).
    public StreamBudget Budget => _budget;

    // What the attempt's worker used, exact or estimated, set by the forwarder as the attempt ends;
    // null: nothing to account (never reached the worker, an upstream error answer, or a worker that
    // failed before any byte of its answer reached the client). Only ever set on an attempt that is
    // not retried, so a request is accounted once.
    public Usage? Usage { get; set; }

    // Before an attempt: its budget (default: no cutoff), nothing charged or used yet.
    public void Start(in StreamBudget budget)
    {
        _budget = budget;
        _charged = 0;
        Usage = null;
    }

    // Not Taken: the chunk must not be relayed (yet, for NeedsBlock).
    public StreamDebit TryTake() => _budget.TryDebit();

    public ValueTask<long> LeaseAsync() => _budget.LeaseAsync();

    public void AddBlock(long granted) => _budget.Add(granted);

    // The end of one relay read: the chunks taken since the last flush (of `chunks` so far) move the counters.
    public void Flush(long chunks)
    {
        if (chunks != _charged)
        {
            charge?.Charge(chunks - _charged);
            _charged = chunks;
        }
    }

    public void GiveBack() => _budget.GiveBack();
}
