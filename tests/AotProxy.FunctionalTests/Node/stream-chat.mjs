// One streamed chat through the official openai npm client, as an application would write it:
// prints one JSON line, {ok, text} when the stream ended normally, or {ok: false, text, error,
// status, message, code} with what the client raised (openai-node throws APIError on a data event
// that carries "error"). Arguments: base URL (…/v1), API key, model, max_tokens, and optionally
// one request header as name=value (x-gateway-queue-updates=true).
import OpenAI, { APIError } from 'openai';

const [baseURL, apiKey, model, maxTokens, header] = process.argv.slice(2);
const defaultHeaders = header ? { [header.split('=')[0]]: header.slice(header.indexOf('=') + 1) } : {};
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000, defaultHeaders });
let text = '';
try {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Count slowly to ten.' }],
    max_tokens: Number(maxTokens ?? 8),
    stream: true,
  });
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  console.log(JSON.stringify({ ok: true, text }));
} catch (e) {
  console.log(JSON.stringify({
    ok: false,
    text,
    error: e?.constructor?.name ?? 'unknown',
    apiError: e instanceof APIError,
    message: e?.message ?? String(e),
    code: e?.code ?? null,
  }));
}
