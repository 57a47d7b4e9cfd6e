namespace AotProxy.Simulator;

// vLLM's LoRA slots (--max-loras): adapters resident on the GPU at once. A request whose adapter
// is resident runs as any other; one whose adapter is not takes a free slot, or the slot of the
// least recently used adapter that has no running request, and its step pays the load
// (--lora-load-ms: vLLM swaps the weights in inside the step, so the whole batch waits); with
// every slot's adapter running, it cannot run yet and the scheduler skips it, as vLLM's does.
// Adapters are indexes into SimulatorOptions.LoraModules. The engine calls it under its lock.
internal sealed class LoraSlots(int adapters, int maxLoras)
{
    private readonly int[] _running = new int[adapters];
    private readonly long[] _usedAt = new long[adapters];
    private readonly bool[] _resident = new bool[adapters];
    private int _residentCount;
    private long _clock;

    public bool IsResident(int adapter) => _resident[adapter];

    public bool HasRunning(int adapter) => _running[adapter] > 0;

    // Whether a request for `adapter` (-1: the base model) can run in this step.
    public bool CanRun(int adapter) => adapter < 0 || _resident[adapter] || _residentCount < maxLoras || Evictable() >= 0;

    // The request starts running (CanRun said it may); true when its adapter had to be loaded.
    public bool Start(int adapter)
    {
        if (adapter < 0)
        {
            return false;
        }

        var load = !_resident[adapter];
        if (load)
        {
            if (_residentCount == maxLoras)
            {
                _resident[Evictable()] = false;
                _residentCount--;
            }

            _resident[adapter] = true;
            _residentCount++;
        }

        _running[adapter]++;
        _usedAt[adapter] = ++_clock;
        return load;
    }

    // It left the batch: finished, aborted or preempted.
    public void Stop(int adapter)
    {
        if (adapter >= 0)
        {
            _running[adapter]--;
        }
    }

    // The least recently used resident adapter without a running request, or -1.
    private int Evictable()
    {
        var victim = -1;
        for (var i = 0; i < _resident.Length; i++)
        {
            if (_resident[i] && _running[i] == 0 && (victim < 0 || _usedAt[i] < _usedAt[victim]))
            {
                victim = i;
            }
        }

        return victim;
    }
}
