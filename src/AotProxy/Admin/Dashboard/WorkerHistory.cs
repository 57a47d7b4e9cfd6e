using AotProxy.Admin.Contracts;

namespace AotProxy.Admin.Dashboard;

// The live console's sparklines: a sample a second per worker (in flight, scraped running,
// waiting, KV use), the last `capacity` of them in a fixed ring. 300: five minutes, ~16 bytes a
// sample, under 5 KB per worker. A worker gone after a reload loses its history.
internal sealed class WorkerHistory(int capacity = WorkerHistory.DefaultCapacity)
{
    public const int DefaultCapacity = 300;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Series> _series = new(StringComparer.Ordinal);

    public void Sample(long second, WorkerReport[] workers)
    {
        lock (_lock)
        {
            foreach (var worker in workers)
            {
                if (!_series.TryGetValue(worker.Name, out var series))
                {
                    _series[worker.Name] = series = new Series(capacity);
                }

                var scrape = worker.Scrape.Fresh ? worker.Scrape : null;
                series.Add(second, worker.InFlight, scrape?.Running, scrape?.Waiting, scrape?.KvCacheUsage);
            }

            if (_series.Count > workers.Length)
            {
                foreach (var name in _series.Keys.Where(n => !workers.Any(w => w.Name == n)).ToArray())
                {
                    _series.Remove(name);
                }
            }
        }
    }

    // all: every sample kept (a stream's first message); otherwise the newest only.
    public WorkerHistoryReport[] Report(bool all)
    {
        lock (_lock)
        {
            return [.. _series.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => s.Value.Report(s.Key, all ? s.Value.Count : Math.Min(1, s.Value.Count)))];
        }
    }

    // One worker's ring; NaN stands for "no fresh scrape" (null in JSON).
    private sealed class Series(int capacity)
    {
        private readonly int[] _inFlight = new int[capacity];
        private readonly float[] _running = new float[capacity];
        private readonly float[] _waiting = new float[capacity];
        private readonly float[] _kv = new float[capacity];
        private long _added;
        private long _lastSecond;

        public int Count => (int)Math.Min(_added, capacity);

        public void Add(long second, int inFlight, double? running, double? waiting, double? kv)
        {
            var i = (int)(_added % capacity);
            _inFlight[i] = inFlight;
            _running[i] = (float)(running ?? double.NaN);
            _waiting[i] = (float)(waiting ?? double.NaN);
            _kv[i] = (float)(kv ?? double.NaN);
            _added++;
            _lastSecond = second;
        }

        // The newest n samples, oldest first.
        public WorkerHistoryReport Report(string name, int n)
        {
            var inFlight = new int[n];
            var running = new double?[n];
            var waiting = new double?[n];
            var kv = new double?[n];
            for (var k = 0; k < n; k++)
            {
                var i = (int)((_added - n + k) % capacity);
                inFlight[k] = _inFlight[i];
                running[k] = Value(_running[i]);
                waiting[k] = Value(_waiting[i]);
                kv[k] = Value(_kv[i]);
            }

            return new WorkerHistoryReport(name, _lastSecond, inFlight, running, waiting, kv);
        }

        private static double? Value(float sample) => float.IsNaN(sample) ? null : Math.Round(sample, 4);
    }
}
