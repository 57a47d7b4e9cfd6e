// One streamed chat through the official openai npm client, as an application would write it:
// prints one JSON line, {ok, text} when the stream ended normally, or {ok: false, text, error,
// status, message, code} with what the client raised (openai-node throws APIError on a data event
// that carries "error"). Arguments: base URL (…/v1), API key, model, max_tokens, and optionally
// one request header as name=value (x-gateway-queue-updates=true) and a file to which each SSE
// comment line is appended as the client's fetch receives it (the client skips them): a test waits
// on that file for the comments the client was sent while it still streams.
import { appendFileSync } from 'node:fs';
import OpenAI, { APIError } from 'openai';

const [baseURL, apiKey, model, maxTokens, header, commentLog] = process.argv.slice(2);
const defaultHeaders = header ? { [header.split('=')[0]]: header.slice(header.indexOf('=') + 1) } : {};

// The platform's fetch, its body passed through unchanged, its comment lines logged on the way.
async function fetchLoggingComments(url, init) {
  const response = await fetch(url, init);
  if (!response.body) {
    return response;
  }

  const decoder = new TextDecoder();
  let partial = '';
  const body = response.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
      partial = lines.pop();
      for (const line of lines.filter(l => l.startsWith(':'))) {
        appendFileSync(commentLog, line + '\n');
      }
      controller.enqueue(chunk);
    },
  }));
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

const client = new OpenAI({
  baseURL, apiKey, maxRetries: 0, timeout: 60_000, defaultHeaders, fetch: commentLog ? fetchLoggingComments : undefined,
});
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
