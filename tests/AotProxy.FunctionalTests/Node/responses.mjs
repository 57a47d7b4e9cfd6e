// One call of the Responses API through the official openai npm client, as an application would
// write it: prints one JSON line, {ok, text, usage, model, header} (usage as the client read it:
// the body's, or the response.completed event's; model: the response's, every event's in a
// stream; header: x-gateway-model), or {ok: false, ...} with what the client raised or the stream's
// `error` event (openai-node yields it as an event of type "error"). Arguments: base URL (…/v1),
// API key, model, max_output_tokens, mode ("create" or "stream").
import OpenAI, { APIError } from 'openai';

const [baseURL, apiKey, model, maxTokens, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const request = { model, input: 'Write a haiku about GPUs.', max_output_tokens: Number(maxTokens) };
let text = '';
try {
  if (mode === 'stream') {
    const { data: stream, response: raw } = await client.responses.create({ ...request, stream: true }).withResponse();
    const header = raw.headers.get('x-gateway-model');
    let usage = null;
    let error = null;
    const models = new Set();
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.response?.model) models.add(event.response.model);
      if (event.type === 'response.completed') usage = event.response.usage;
      if (event.type === 'error') error = event;
    }
    console.log(JSON.stringify(error ? { ok: false, text, event: error, code: error.code, message: error.message }
      : { ok: true, text, usage, model: [...models].join(','), header }));
  } else {
    const { data: response, response: raw } = await client.responses.create(request).withResponse();
    console.log(JSON.stringify({ ok: true, text: response.output_text, usage: response.usage, status: response.status, model: response.model, header: raw.headers.get('x-gateway-model') }));
  }
} catch (e) {
  console.log(JSON.stringify({
    ok: false,
    text,
    error: e?.constructor?.name ?? 'unknown',
    apiError: e instanceof APIError,
    status: e?.status ?? null,
    message: e?.message ?? String(e),
    code: e?.code ?? null,
  }));
}
