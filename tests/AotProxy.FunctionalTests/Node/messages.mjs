// One call of the Messages API through the official @anthropic-ai/sdk client, as an application
// would write it: prints one JSON line, {ok, text, usage, model, header} (the usage the SDK
// reports: the body's, or message_start's and message_delta's as its MessageStream merges them;
// model: the message's; header: x-gateway-model), or {ok: false, error,
// status, type, message, retryAfter} with what the SDK raised (AuthenticationError,
// RateLimitError, ... from the status and Anthropic's error body). Arguments: base URL (the
// gateway's root: the SDK adds /v1/messages), API key (sent as x-api-key), model, max_tokens,
// mode ("create" or "stream").
import Anthropic from '@anthropic-ai/sdk';

const [baseURL, apiKey, model, maxTokens, mode] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const request = { model, max_tokens: Number(maxTokens), system: 'Be brief.', messages: [{ role: 'user', content: 'Write a haiku about GPUs.' }] };
let text = '';
try {
  if (mode === 'stream') {
    const stream = client.messages.stream(request);
    stream.on('text', (delta) => { text += delta; });
    const { response: raw } = await stream.withResponse();
    const message = await stream.finalMessage();
    console.log(JSON.stringify({ ok: true, text, usage: message.usage, stopReason: message.stop_reason, model: message.model, header: raw.headers.get('x-gateway-model') }));
  } else {
    const { data: message, response: raw } = await client.messages.create(request).withResponse();
    console.log(JSON.stringify({ ok: true, text: message.content.map((b) => b.text ?? '').join(''), usage: message.usage, stopReason: message.stop_reason, model: message.model, header: raw.headers.get('x-gateway-model') }));
  }
} catch (e) {
  console.log(JSON.stringify({
    ok: false,
    text,
    error: e?.constructor?.name ?? 'unknown',
    status: e?.status ?? null,
    type: e?.error?.error?.type ?? e?.type ?? null,
    message: e?.message ?? String(e),
    retryAfter: e?.headers?.get?.('retry-after') ?? null,
  }));
}
