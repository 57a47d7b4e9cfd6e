using AotProxy.Configuration;

namespace AotProxy.Routing;

// The result of the active checks (GET /health): unhealthy_threshold consecutive failures take
// the worker out, healthy_threshold consecutive successes bring it back. One checker writes;
// the hot path only reads State.
internal sealed class ActiveHealth
{
    private volatile HealthState _state = HealthState.Unknown;
    private int _failures;
    private int _successes;

    public HealthState State => _state;

    public bool IsUp => _state != HealthState.Unhealthy;

    public DateTimeOffset? LastCheck { get; private set; }

    // The Retry-After for a model no worker can take now: a worker that is back is routable after
    // healthy_threshold passing checks (10 s with the defaults, 2 x 5 s); nothing says sooner.
    public static int ReturnSeconds(HealthModel health) =>
        (int)Math.Clamp(Math.Ceiling(health.Interval.TotalSeconds * health.HealthyThreshold), 1, 300);

    // Returns whether the state changed.
    public bool Record(bool healthy, HealthModel model, DateTimeOffset at)
    {
        LastCheck = at;
        var before = _state;
        if (healthy)
        {
            _failures = 0;
            if (++_successes >= model.HealthyThreshold || before == HealthState.Unknown)
            {
                _state = HealthState.Healthy;
            }
        }
        else
        {
            _successes = 0;
            if (++_failures >= model.UnhealthyThreshold)
            {
                _state = HealthState.Unhealthy;
            }
        }

        return _state != before;
    }
}
