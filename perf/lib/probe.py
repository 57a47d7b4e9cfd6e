"""What perf/sse_probe.py, perf/pair_probe.py and perf/event_latency.py share: the command line's
common options, the request they send, the keep-alive connection of the two sequential probes, the
fixed schedule those start their requests on, percentiles, and the one JSON line they print.

A probe imports it with perf/lib on its path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    from probe import ...
"""
import argparse
import json
import socket
import time
from urllib.parse import urlsplit

CHAT_PATH = "/v1/chat/completions"


def parser(doc):
    """A probe's parser, its docstring as --help."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def options(p, *positionals, warmup=None):
    """The options the probes share: their positionals, --warmup N (requests before the measured
    ones, not reported) when warmup is its default, and --out FILE.json (emit). Returns p."""
    for name in positionals:
        p.add_argument(name)
    if warmup is not None:
        p.add_argument("--warmup", type=int, default=warmup)
    p.add_argument("--out")
    return p


def chat_path(url):
    """The URL's path, or the chat completions endpoint when it names none."""
    path = urlsplit(url).path
    return path if path not in ("", "/") else CHAT_PATH


def post_bytes(host_header, path, key, body):
    """One JSON POST with a bearer key, head and body in one buffer (one send)."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection, TCP_NODELAY, read into one buffer."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data
        return time.perf_counter_ns()

    def post(self, host_header, path, key, body):
        """Sends one JSON POST in one send; returns the time just before it (perf_counter_ns).

        Before, not after: a server on this core (the simulator, direct) can run inside the send,
        woken by the loopback delivery, and write its answer before the call returns; a time taken
        after the send then hides that server's work (~200 µs of the simulator's, seen in a
        packet capture), and the proxies, on the other core, looked that much slower than direct."""
        request = post_bytes(host_header, path, key, body)
        sent = time.perf_counter_ns()
        self.sock.sendall(request)
        return sent

    def read_until(self, marker):
        while marker not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(marker)
        return head

    def read_chunk(self):
        """The next chunk of a chunked body, whole; b"" for the last (zero-size) one."""
        size = int(self.read_until(b"\r\n").split(b";")[0], 16)
        while len(self.buf) < size + 2:
            self.fill()
        chunk, self.buf = self.buf[:size], self.buf[size + 2:]
        return chunk


def schedule(count, interval_s):
    """Yields 0 to count - 1, each at most every interval_s seconds (back to back when one ran longer)."""
    next_start = time.perf_counter()
    for i in range(count):
        delay = next_start - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        next_start = max(next_start + interval_s, time.perf_counter())
        yield i


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def summary(values):
    """n, p50, p90 and p99 of the values that are not None."""
    values = [v for v in values if v is not None]
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99)}


def emit(report, out):
    """Prints the report as one JSON line, and writes it to OUT too when given."""
    text = json.dumps(report)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    print(text)
