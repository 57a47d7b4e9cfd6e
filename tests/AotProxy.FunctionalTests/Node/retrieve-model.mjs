// One client.models.retrieve(id) through the official openai npm client: prints one JSON line,
// {ok: true, model} with the entry it returned, or {ok: false, error, status, code, message} with
// what the client raised. Arguments: base URL (…/v1), API key, model id.
import OpenAI, { APIError } from 'openai';

const [baseURL, apiKey, id] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
try {
  const model = await client.models.retrieve(id);
  console.log(JSON.stringify({ ok: true, model }));
} catch (e) {
  console.log(JSON.stringify({
    ok: false,
    error: e?.constructor?.name ?? 'unknown',
    apiError: e instanceof APIError,
    status: e?.status ?? null,
    code: e?.code ?? null,
    message: e?.message ?? String(e),
  }));
}
