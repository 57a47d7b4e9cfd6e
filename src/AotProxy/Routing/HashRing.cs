namespace AotProxy.Routing;

// consistent_hash's ring: `virtualNodes` points per worker, sorted, so that adding or removing
// one worker moves only about 1/n of the keys. Immutable; built once per pool and node count.
internal sealed class HashRing
{
    private readonly ulong[] _points;
    private readonly int[] _owners;

    public HashRing(WorkerState[] workers, int virtualNodes)
    {
        VirtualNodes = virtualNodes;
        _points = new ulong[workers.Length * virtualNodes];
        _owners = new int[_points.Length];
        for (var w = 0; w < workers.Length; w++)
        {
            // By name, not index: a worker keeps its points when others come and go.
            var name = StableHash.Of(workers[w].Name.AsSpan());
            for (var v = 0; v < virtualNodes; v++)
            {
                var at = (w * virtualNodes) + v;
                _points[at] = StableHash.Mix(name + (ulong)v);
                _owners[at] = w;
            }
        }

        Array.Sort(_points, _owners);
    }

    public int VirtualNodes { get; }

    public int Length => _points.Length;

    // The ring position of the first point at or after `key`'s place, wrapping around.
    public int Start(ulong key)
    {
        var at = Array.BinarySearch(_points, StableHash.Mix(key));
        at = at < 0 ? ~at : at;
        return at == _points.Length ? 0 : at;
    }

    // The worker index that owns the point `steps` positions clockwise from `start`.
    public int OwnerAt(int start, int steps) => _owners[(start + steps) % _owners.Length];
}
