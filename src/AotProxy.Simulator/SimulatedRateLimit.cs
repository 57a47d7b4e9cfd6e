namespace AotProxy.Simulator;

// A hosted API's own rate limits, as OpenAI enforces them: at most RequestsPerMinute requests and
// TokensPerMinute tokens (prompt + max_tokens) in any sliding 60 s, and, because "limits may be
// quantized, e.g. 60,000 rpm enforced as 1,000 requests per second", no more than one second's
// worth at once: ceil(rpm/60) requests, refilled at rpm/60 per second (GCRA). A plain "at most
// ceil(rpm/60) in any 1 s" would punish evenly paced traffic for a few ms of loopback jitter; this
// still answers a burst with 429 within its first second. Refused requests count for nothing.
internal sealed class SimulatedRateLimit
{
    private static readonly long Window = TimeSpan.FromSeconds(60).Ticks;

    private readonly TimeProvider _time;
    private readonly long _origin;
    private readonly Lock _lock = new();
    private readonly Queue<(long At, long Tokens)> _window = new();
    private readonly long _rpm;
    private readonly long _tpm;
    private readonly long _interval;  // 60 s / rpm
    private readonly long _burstSpan; // (ceil(rpm/60) - 1) intervals: how far ahead the GCRA may run
    private long _windowTokens;
    private long _tat;                // GCRA's theoretical arrival time

    private SimulatedRateLimit(long rpm, long tpm, TimeProvider time)
    {
        _rpm = rpm;
        _tpm = tpm;
        _time = time;
        _origin = time.GetTimestamp();
        if (rpm > 0)
        {
            _interval = Window / rpm;
            _burstSpan = (((rpm + 59) / 60) - 1) * _interval;
        }
    }

    public long RequestsPerMinute => _rpm;

    public long TokensPerMinute => _tpm;

    public static SimulatedRateLimit? For(SimulatorOptions options) =>
        options.RequestsPerMinute > 0 || options.TokensPerMinute > 0
            ? new SimulatedRateLimit(options.RequestsPerMinute, options.TokensPerMinute, options.TimeProvider)
            : null;

    // Null: the request may go (and is counted). Otherwise which limit refused it ("requests" or
    // "tokens", OpenAI's error type), what remains of it, and when a retry would pass.
    public (string Type, long Remaining, TimeSpan RetryAfter)? TryAdmit(long tokens)
    {
        lock (_lock)
        {
            var now = _time.GetElapsedTime(_origin).Ticks;
            while (_window.TryPeek(out var oldest) && oldest.At + Window <= now)
            {
                _window.Dequeue();
                _windowTokens -= oldest.Tokens;
            }

            if (_rpm > 0 && _window.Count >= _rpm)
            {
                return ("requests", 0, TimeSpan.FromTicks(_window.Peek().At + Window - now));
            }

            if (_rpm > 0 && _tat - now > _burstSpan)
            {
                return ("requests", Math.Max(0, _rpm - _window.Count), TimeSpan.FromTicks(_tat - _burstSpan - now));
            }

            if (_tpm > 0 && _windowTokens + tokens > _tpm)
            {
                var left = _windowTokens;
                var at = now;
                foreach (var (started, used) in _window)
                {
                    left -= used;
                    at = started + Window;
                    if (left + tokens <= _tpm)
                    {
                        break;
                    }
                }

                return ("tokens", Math.Max(0, _tpm - _windowTokens), TimeSpan.FromTicks(at - now));
            }

            _window.Enqueue((now, tokens));
            _windowTokens += tokens;
            if (_rpm > 0)
            {
                _tat = Math.Max(_tat, now) + _interval;
            }

            return null;
        }
    }
}
