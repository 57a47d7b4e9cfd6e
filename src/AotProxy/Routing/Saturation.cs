namespace AotProxy.Routing;

// Whether a worker is saturated for p2c_kv's affinities (session, LoRA): vLLM queues requests
// there. Only candidates are asked, and a candidate has a free gateway slot; so the test is the
// scraped num_requests_waiting >= 1, without WorkerLoad's since-scrape correction: a request
// sent since the scrape into a free slot starts at once wherever max_concurrency <= max_num_seqs,
// and counting it as queued would release every busy conversation on each request it sent.
// Without a fresh scrape, WorkerLoad's own estimate (what exceeds max_concurrency) decides.
// `load`: the worker's, just read (its Fresh flag saves a second look at the clock).
internal static class Saturation
{
    public static bool IsSaturated(WorkerState worker, WorkerLoad load) =>
        load.Fresh && worker.Scraped is { } scraped ? scraped.Metrics.Waiting >= 1 : load.Waiting >= 1;
}
