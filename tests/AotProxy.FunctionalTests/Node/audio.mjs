// One call of the audio API through the official openai npm client, as an application would
// write it: audio.transcriptions.create or audio.translations.create with a WAV file. Prints one
// JSON line: {ok, text, usage, events} (usage as the client read it: the body's, or a stream's
// usage chunk; events: the stream's chunk objects), or {ok: false, status, message, code}.
// Arguments: base URL (…/v1), API key, model, api ("transcriptions" or "translations"), mode
// ("create", "stream", or "stream-usage": a stream that asks for vLLM's stream_include_usage),
// path of the WAV file.
import fs from 'node:fs';
import OpenAI, { APIError } from 'openai';

const [baseURL, apiKey, model, api, mode, wavPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const endpoint = api === 'translations' ? client.audio.translations : client.audio.transcriptions;
const request = { model, file: fs.createReadStream(wavPath) };
if (mode !== 'create') request.stream = true;
if (mode === 'stream-usage') request.stream_include_usage = true;
try {
  const answer = await endpoint.create(request);
  if (mode === 'create') {
    console.log(JSON.stringify({ ok: true, text: answer.text, usage: answer.usage ?? null }));
  } else if (typeof answer === 'string') {
    // translations.create has no stream in the client's types: it hands back the raw SSE text.
    const events = answer.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)));
    report(events, answer.includes('data: [DONE]'));
  } else {
    const events = [];
    for await (const event of answer) events.push(event);
    report(events, true);
  }
} catch (e) {
  console.log(JSON.stringify({
    ok: false,
    error: e?.constructor?.name ?? 'unknown',
    apiError: e instanceof APIError,
    status: e?.status ?? null,
    message: e?.message ?? String(e),
    code: e?.code ?? null,
  }));
}

function report(events, done) {
  const text = events.map((e) => e.choices?.[0]?.delta?.content ?? '').join('');
  const usage = events.find((e) => e.usage)?.usage ?? null;
  console.log(JSON.stringify({ ok: true, text, usage, done, objects: [...new Set(events.map((e) => e.object))], chunks: events.length }));
}
