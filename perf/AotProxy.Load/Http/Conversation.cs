using System.Globalization;
using System.Text;
using AotProxy.Load.Recording;

namespace AotProxy.Load.Http;

// One multi-turn chat: what was said so far (user, assistant, user, ...) and a gate that lets one
// turn through at a time, since a turn carries the answer to the one before it. Turns the
// schedule hands it while a turn is out wait at the gate, timed from their intended send: open
// loop, with the turns queued per conversation. After `turns` answered turns it starts over as a
// new conversation with a new id (so its history, and the prompt, stop growing).
internal sealed class Conversation
{
    private readonly List<string> _said = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly uint _run;
    private readonly int _index;
    private readonly int _turns;
    private int _generation;

    public Conversation(uint run, int index, int turns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(turns);
        _run = run;
        _index = index;
        _turns = turns;
        Id = NewId();
    }

    // The x-session-id value: the runner's random run tag (a second run against warm workers is a
    // new set of conversations), the conversation's number and how often it started over.
    public string Id { get; private set; }

    // The messages of the answered turns, oldest first: user at even indexes, assistant at odd.
    public IReadOnlyList<string> Said => _said;

    // One turn: waits for the previous one to end, sends the conversation so far plus a new user
    // message, and keeps both that message and the streamed answer when the turn succeeds. A
    // failed turn leaves the history as it was (the user asks again with new text next time).
    public async Task<SendOutcome?> TakeTurnAsync(RequestSender sender, RequestTemplate template, long intendedTicks, ScenarioRecorder recorder, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(sender);
        ArgumentNullException.ThrowIfNull(template);
        try
        {
            await _gate.WaitAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return null; // the run stopped while this turn waited: never sent
        }

        try
        {
            var (body, user) = template.NextTurn(this);
            var answer = new StringBuilder();
            var outcome = await sender.SendAsync(template, body, Id, answer, intendedTicks, recorder, stop).ConfigureAwait(false);
            if (outcome is { Error: null })
            {
                Answered(user, answer.ToString());
            }

            return outcome;
        }
        finally
        {
            _gate.Release();
        }
    }

    // Called with the gate held (TakeTurnAsync; tests call it directly).
    internal void Answered(string user, string answer)
    {
        _said.Add(user);
        _said.Add(answer);
        if (_said.Count >= 2 * _turns)
        {
            _said.Clear();
            _generation++;
            Id = NewId();
        }
    }

    private string NewId() => string.Create(CultureInfo.InvariantCulture, $"{_run:x8}-c{_index}-{_generation}");
}
