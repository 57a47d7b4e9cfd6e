#!/usr/bin/env python3
"""perf/connections_client.py: memory per idle keep-alive connection and per SSE stream of one
server process (perf/connections.sh runs it against AotProxy, nginx and the simulator direct).

  connections_client.py --url http://127.0.0.1:PORT --pid PID --key K --model M
                        --idle N --streams M [--sim URL] [--token-delay-ms 5000] [--out FILE]

1. baseline: a few warm-up requests (stream and non-stream, on connections closed again); with
   --admin, a gateway that parks also parks and resumes WARM_PARKS connections twice (then they
   close), so that the code a park and a resume run first is in the baseline, not in the idle
   step; then PID's VmRSS once it is steady;
2. N idle connections: each sends one non-stream chat completion (max_tokens 1), reads the whole
   answer and stays open (HTTP/1.1 keep-alive); VmRSS once steady (a gateway that parks idle
   connections: once it has parked all N, and 3 s later);
3. M streams, besides the idle ones: the simulator (--sim, its /sim/faults) is first told to wait
   --token-delay-ms between tokens, so each stream stays open; every stream must deliver its first
   event with content (a choices[0] delta with text), then keeps reading; VmRSS once steady.
With --admin (the gateway's admin URL) each reading also carries its GC figures (/api/status), and
with --compact also RSS and GC figures after a full compacting collection (live memory only).
Then it closes everything, clears the simulator's faults and prints one JSON object (also to
--out): the three RSS readings (KiB, with RssAnon and RssFile), KiB per idle connection and per
stream (growth over the previous step / count) and the failures. Exit 1 when a connection or a
stream failed: a figure measured over fewer connections than asked is not the figure.
Loopback only; bounded in count (--idle, --streams <= 20,000) and in time (--deadline per phase).
"""
import argparse
import asyncio
import json
import sys
import time
import urllib.parse
import urllib.request

OPEN_AT_ONCE = 256  # connects in flight: below the listen backlogs (Kestrel 512, nginx 511)
PARK_SETTLE_S = 3  # after the last park: the gateway's check for a quiet data plane runs once a second
WARM_PARKS = 8  # connections parked and resumed during the warm-up


def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def runtime(admin):
    """The gateway's own GC figures (/api/status runtime), or None without --admin."""
    if not admin:
        return None
    with urllib.request.urlopen(admin.rstrip("/") + "/api/status", timeout=10) as r:
        return json.load(r).get("runtime")


async def compacted(a):
    """--compact: POST /api/config/reload, after which the gateway runs one full compacting GC
    (Gateway/HeapCompaction, 1 s later); then RSS and the GC figures hold only what is live."""
    if not (a.compact and a.admin):
        return None
    req = urllib.request.Request(a.admin.rstrip("/") + "/api/config/reload", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
    await asyncio.sleep(3)
    return {"rss_kib": await steady_rss(a.pid, a.deadline), "runtime": runtime(a.admin)}


def metric(admin, name):
    """An unlabelled series from the gateway's /metrics; None when it has none."""
    with urllib.request.urlopen(admin.rstrip("/") + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def parked(admin):
    """llm_gateway_parked_connections; None when the gateway does not park."""
    return metric(admin, "llm_gateway_parked_connections")


async def settle_parked(a, count):
    """With --admin, a gateway that parks (server.park_idle_after): wait, up to --deadline, until it has
    parked the `count` idle connections, then PARK_SETTLE_S more (what it does once idle, such as a
    collection, belongs to the reading). Polled once a second: each /metrics answer allocates, and
    a gateway that allocates is not idle. Returns the seconds waited, or None."""
    if not a.admin or parked(a.admin) is None:
        return None
    t0 = time.monotonic()
    while parked(a.admin) < count and time.monotonic() - t0 < a.deadline:
        await asyncio.sleep(1.0)
    await asyncio.sleep(PARK_SETTLE_S)
    return round(time.monotonic() - t0, 1)


async def wait_parked(a, done):
    """Polls llm_gateway_parked_connections once a second until done(count), up to --deadline."""
    t0 = time.monotonic()
    while not done(parked(a.admin)) and time.monotonic() - t0 < a.deadline:
        await asyncio.sleep(1.0)


async def steady_rss(pid, deadline_s):
    """VmRSS once two readings 1 s apart differ by less than 256 KiB (or at the deadline)."""
    last = status_kib(pid)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        await asyncio.sleep(1.0)
        now = status_kib(pid)
        if abs(now["VmRSS"] - last["VmRSS"]) < 256:
            return now
        last = now
    return last


class Body:
    """Reads an HTTP/1.1 response's head and its body, chunked or Content-Length."""

    def __init__(self, reader):
        self.reader = reader
        self.chunked = False
        self.left = 0  # Content-Length bytes, or what is left of the current chunk
        self.done = False

    async def head(self):
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            self.chunked = True
        else:
            self.left = int(headers.get("content-length", "0"))
            self.done = self.left == 0
        return status

    async def read(self):
        """The body's next bytes, b"" at its end."""
        if self.done:
            return b""
        if not self.chunked:
            data = await self.reader.read(min(self.left, 65536))
            if not data:
                raise ConnectionError("closed before the end of the body")
            self.left -= len(data)
            self.done = self.left == 0
            return data
        if self.left == 0:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                self.done = True
                return b""
            self.left = size
        data = await self.reader.read(self.left)
        if not data:
            raise ConnectionError("closed in the middle of a chunk")
        self.left -= len(data)
        if self.left == 0:
            await self.reader.readexactly(2)
        return data


def request(host, path, key, body):
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


def has_content(event):
    try:
        choices = json.loads(event).get("choices") or []
    except ValueError:
        return False
    return any((c.get("delta") or {}).get("content") for c in choices)


class Client:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("connections_client.py: loopback targets only")
        self.host, self.port, self.args = u.hostname, u.port, args
        self.gate = asyncio.Semaphore(OPEN_AT_ONCE)
        self.writers = []
        self.drains = []
        self.errors = {}

    def fail(self, kind, e):
        key = f"{kind}: {type(e).__name__} {e}"[:160]
        self.errors[key] = self.errors.get(key, 0) + 1

    def body(self, stream, max_tokens):
        b = {"model": self.args.model, "messages": [{"role": "user", "content": "Tell me about proxies."}],
             "max_tokens": max_tokens}
        if stream:
            b["stream"] = True
        return request(f"{self.host}:{self.port}", "/v1/chat/completions", self.args.key, b)

    async def connect(self):
        return await asyncio.open_connection(self.host, self.port, limit=1 << 20)

    async def one_request(self, keep, stream=False):
        """A non-stream (or short stream) request on a new connection; kept open when `keep`."""
        async with self.gate:
            reader, writer = await self.connect()
            try:
                await self.exchange(reader, writer, stream)
            except BaseException:
                writer.close()
                raise
        if keep:
            self.writers.append(writer)
        else:
            writer.close()

    async def exchange(self, reader, writer, stream=False):
        """One request on an open connection, read to its end."""
        writer.write(self.body(stream, 1 if not stream else 2))
        body = Body(reader)
        status = await body.head()
        while await body.read():
            pass
        if status != 200:
            raise ConnectionError(f"status {status}")

    async def warm_parking(self):
        """A gateway that parks: WARM_PARKS connections park, resume with a request, park again, close."""
        a = self.args
        if not a.admin or parked(a.admin) is None:
            return
        conns = [await self.connect() for _ in range(WARM_PARKS)]
        try:
            for reader, writer in conns:
                await self.exchange(reader, writer)
            await wait_parked(a, lambda n: n >= WARM_PARKS)
            for reader, writer in conns:
                await self.exchange(reader, writer)
            await wait_parked(a, lambda n: n >= WARM_PARKS)
        finally:
            for _, writer in conns:
                writer.close()
        await wait_parked(a, lambda n: n == 0)

    async def one_stream(self, max_tokens, first_events):
        async with self.gate:
            reader, writer = await self.connect()
            self.writers.append(writer)
            writer.write(self.body(True, max_tokens))
            body = Body(reader)
            status = await body.head()
            if status != 200:
                raise ConnectionError(f"status {status}")
        pending = b""
        while True:
            data = await body.read()
            if not data:
                raise ConnectionError("the stream ended before its first content event")
            pending += data
            *events, pending = pending.split(b"\n\n")
            if any(e.startswith(b"data: ") and has_content(e[6:]) for e in events):
                break
        first_events.append(time.monotonic())
        # Keep reading (slowly arriving tokens) until the run closes the connection.
        self.drains.append(asyncio.ensure_future(self.drain(body)))

    async def drain(self, body):
        try:
            while await body.read():
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
            pass

    async def gather(self, kind, coros):
        results = await asyncio.wait_for(asyncio.gather(*coros, return_exceptions=True), self.args.deadline)
        for r in results:
            if isinstance(r, BaseException):
                self.fail(kind, r)
        return sum(1 for r in results if not isinstance(r, BaseException))

    def sim_faults(self, faults):
        if not self.args.sim:
            return
        req = urllib.request.Request(self.args.sim.rstrip("/") + "/sim/faults", data=json.dumps(faults).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    async def run(self):
        a = self.args
        # Warm-up: the first requests' one-time costs (pools, lazy statics) belong to the baseline.
        await self.gather("warm-up", [self.one_request(False, stream=i % 2 == 1) for i in range(16)])
        try:
            await self.warm_parking()
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            self.fail("warm-up parking", e)
        base = await steady_rss(a.pid, a.deadline)
        gc = {"base": runtime(a.admin)}
        gc["base_compacted"] = await compacted(a)

        t0 = time.monotonic()
        idle_ok = await self.gather("idle", [self.one_request(True) for _ in range(a.idle)])
        idle_s = time.monotonic() - t0
        settled_s = await settle_parked(a, idle_ok)
        idle = await steady_rss(a.pid, a.deadline)
        gc["idle"] = runtime(a.admin)
        if settled_s is not None:  # the collections after the parks (Gateway/ParkedCollection), if the gateway has them
            gc["idle_collections"] = metric(a.admin, "llm_gateway_idle_collections_total")
            gc["idle_collection_pause_s"] = metric(a.admin, "llm_gateway_idle_collection_pause_seconds_total")
        gc["idle_compacted"] = await compacted(a)

        # One token every token-delay-ms: enough tokens to outlast the phase and the reading.
        self.sim_faults({"inter_token_delay_ms": a.token_delay_ms})
        max_tokens = max(4, int(a.deadline * 3 * 1000 / a.token_delay_ms))
        first_events = []
        t0 = time.monotonic()
        stream_ok = await self.gather("stream", [self.one_stream(max_tokens, first_events) for _ in range(a.streams)])
        streams_s = time.monotonic() - t0
        streams = await steady_rss(a.pid, a.deadline)
        gc["streams"] = runtime(a.admin)
        gc["streams_compacted"] = await compacted(a)
        alive = sum(1 for d in self.drains if not d.done())
        if a.hold > 0:
            # Everything stays open for a heap dump (dotnet-gcdump) or a look at /proc.
            print(f"holding {a.idle} idle connections and {a.streams} streams for {a.hold} s", file=sys.stderr, flush=True)
            await asyncio.sleep(a.hold)

        for w in self.writers:
            w.close()
        for d in self.drains:
            d.cancel()
        await asyncio.gather(*self.drains, return_exceptions=True)
        self.sim_faults({"clear": True})

        per = lambda grow, n: round(grow / n, 2) if n else None
        return {
            "idle": a.idle, "streams": a.streams, "idle_ok": idle_ok, "streams_ok": stream_ok,
            "first_events": len(first_events), "streams_alive_at_reading": alive,
            "idle_open_s": round(idle_s, 2), "streams_open_s": round(streams_s, 2), "parked_settle_s": settled_s,
            "rss_base_kib": base, "rss_idle_kib": idle, "rss_streams_kib": streams,
            "kib_per_idle": per(idle["VmRSS"] - base["VmRSS"], a.idle),
            "kib_per_stream": per(streams["VmRSS"] - idle["VmRSS"], a.streams),
            "total_mib": round(streams["VmRSS"] / 1024, 1),
            "kib_per_idle_compacted": gc["base_compacted"] and per(gc["idle_compacted"]["rss_kib"]["VmRSS"] - gc["base_compacted"]["rss_kib"]["VmRSS"], a.idle),
            "kib_per_stream_compacted": gc["base_compacted"] and per(gc["streams_compacted"]["rss_kib"]["VmRSS"] - gc["idle_compacted"]["rss_kib"]["VmRSS"], a.streams),
            "runtime": gc,
            "errors": self.errors,
        }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True, help="the process whose RSS is measured")
    p.add_argument("--key", default="sk-bench")
    p.add_argument("--model", default="bench")
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--sim", default="", help="the simulator's base URL, for /sim/faults")
    p.add_argument("--admin", default="", help="the gateway's admin base URL: its GC figures at each reading")
    p.add_argument("--compact", action="store_true", help="with --admin: also read RSS after a full compacting GC")
    p.add_argument("--token-delay-ms", type=int, default=5000)
    p.add_argument("--deadline", type=float, default=120, help="seconds per phase at most")
    p.add_argument("--hold", type=float, default=0, help="seconds to keep everything open after the last reading")
    p.add_argument("--out", default="")
    a = p.parse_args()
    if not (0 <= a.idle <= 20000 and 0 <= a.streams <= 20000):
        sys.exit("connections_client.py: --idle and --streams go up to 20,000")
    result = asyncio.run(Client(a).run())
    text = json.dumps(result)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    ok = (result["idle_ok"] == a.idle and result["streams_ok"] == a.streams and result["first_events"] == a.streams
          and result["streams_alive_at_reading"] == a.streams)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
