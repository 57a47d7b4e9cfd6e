#!/usr/bin/env python3
"""Memory and time of a large tenant table: a reload to N tenants, a revert, and a fresh start.

Usage: perf/tenants.py [COMMAND] [RUNS] [TENANTS]
       (default artifacts/aot/aotproxy, 5 runs, 100000 tenants; COMMAND may be
       "dotnet path/aotproxy.dll" for the JIT build)

Each [[tenants]] entry has a name, one api_key_sha256, rpm and tpm (~145 bytes: 100,000 of them
are 14.5 MB). Per run, with one gateway process:
  1. start on a one-tenant config, wait for "aotproxy ready:", 2 s later read VmRSS (idle);
  2. replace the file (write + rename, as an editor saves) with the N-tenant config; the file
     watcher reloads it. Reload time: from the rename to the "Config revision 2 applied" log line
     (new snapshot in force and the limit state rebuilt; the watcher's 250 ms debounce included). Peak: VmHWM, reset just before the rename (/proc/PID/clear_refs);
     RSS and GC heap (/api/status) 2 s after the reload;
  3. change one tenant's rpm in the N-tenant config (an operator's edit): the same figures;
  4. revert to the one-tenant config: the same figures.
The gateway compacts its heap 1 s after each load (GatewayHost.Compact), so "2 s after" is
what it settles at; the compaction's pause is taken from its log line.
Then a fresh start on the N-tenant config: exec -> "aotproxy ready:", peak and RSS 2 s later.
Reports the median of each figure over the runs. It waits on the gateway's own log lines,
never polls in a busy loop (the machine has two cores).
"""
import hashlib, json, os, re, shlex, signal, statistics, subprocess, sys, tempfile, threading, time, urllib.request

command = shlex.split(sys.argv[1] if len(sys.argv) > 1 else "artifacts/aot/aotproxy")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
tenants = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000

HEAD = """[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[ledger]
path = ""

[[workers]]
name = "w"
url = "http://127.0.0.1:1"
models = ["m"]
"""


def tenant_table(count):
    parts = [HEAD]
    for i in range(count):
        digest = hashlib.sha256(f"sk-tenant-{i}".encode()).hexdigest()
        parts.append(f'\n[[tenants]]\nname = "tenant-{i:06d}"\napi_key_sha256 = ["{digest}"]\nrpm = 600\ntpm = 100000\n')
    return "".join(parts)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        return int(next(l for l in status if l.startswith(field)).split()[1])


def reset_peak(pid):
    # "5": reset the peak RSS (VmHWM) to the current RSS (proc(5), Linux 4.0+).
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def heap_mib(admin):
    with urllib.request.urlopen(admin + "api/status") as response:
        return json.load(response)["runtime"]["heap_bytes"] / 1048576


class Gateway:
    def __init__(self, config):
        self.lines, self.cond = [], threading.Condition()
        self.proc = subprocess.Popen(command + ["serve", "--config", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    # The first line matching pattern from line index `start` on; None after `timeout` when
    # optional, else an exit.
    def wait_for(self, pattern, timeout=300, start=0, optional=False):
        regex, deadline, seen = re.compile(pattern), time.monotonic() + timeout, start
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return line
                seen = max(seen, len(self.lines))
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    if optional:
                        return None
                    raise SystemExit(f"tenants.py: no line matching {pattern!r}:\n" + "".join(self.lines[-20:]))
                self.cond.wait(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=60) == 0, "the gateway did not exit 0 on SIGTERM"


def replace(path, text):
    temp = path + ".tmp"
    with open(temp, "w") as f:
        f.write(text)
    os.replace(temp, path)


small, large = tenant_table(1), tenant_table(tenants)
edited = large.replace('name = "tenant-000000"\n', 'name = "tenant-000000"\nmax_in_flight = 8\n', 1)
assert edited != large
figures = {}


def record(name, value):
    figures.setdefault(name, []).append(value)


with tempfile.TemporaryDirectory(prefix="aotproxy-tenants-") as directory:
    config, fresh = os.path.join(directory, "gateway.toml"), os.path.join(directory, "fresh.toml")
    with open(fresh, "w") as f:
        f.write(large)
    for run in range(runs):
        replace(config, small)
        gateway = Gateway(config)
        admin = re.search(r"admin=(\S+)", gateway.wait_for("aotproxy ready:")).group(1)
        pid = gateway.proc.pid
        time.sleep(2)  # after the compaction that follows startup
        record("idle RSS, 1 tenant", status_kib(pid, "VmRSS") / 1024)
        steps = ((2, large, f"reload 1 -> {tenants} tenants"), (3, edited, f"reload {tenants} -> {tenants}, one edited"), (4, small, f"revert {tenants} -> 1 tenant"))
        for revision, text, label in steps:
            reset_peak(pid)
            mark = gateway.mark()
            start = time.monotonic()
            replace(config, text)
            gateway.wait_for(rf"Config revision {revision} applied")
            record(f"{label}: time (s)", time.monotonic() - start)
            record(f"{label}: peak RSS", status_kib(pid, "VmHWM") / 1024)
            time.sleep(2)
            record(f"{label}: RSS 2 s after", status_kib(pid, "VmRSS") / 1024)
            record(f"{label}: GC heap 2 s after", heap_mib(admin))
            # Binaries before the compaction (issue 14) print no such line.
            if pause := gateway.wait_for(r"Memory after loading the config", timeout=1, start=mark, optional=True):
                record(f"{label}: compaction pause (ms)", float(re.search(r"in a (\d+) ms pause", pause).group(1)))
        gateway.stop()

        start = time.monotonic()
        gateway = Gateway(fresh)
        admin = re.search(r"admin=(\S+)", gateway.wait_for("aotproxy ready:")).group(1)
        record(f"fresh start with {tenants} tenants: exec -> ready (s)", time.monotonic() - start)
        time.sleep(2)
        record(f"fresh start with {tenants} tenants: peak RSS", status_kib(gateway.proc.pid, "VmHWM") / 1024)
        record(f"fresh start with {tenants} tenants: RSS 2 s after", status_kib(gateway.proc.pid, "VmRSS") / 1024)
        record(f"fresh start with {tenants} tenants: GC heap 2 s after", heap_mib(admin))
        gateway.stop()
        print(f"run {run + 1}/{runs} done", file=sys.stderr)

print(f"{command[-1]}, {tenants} tenants ({len(large) / 1e6:.1f} MB of TOML), median of {runs} runs (min, max); sizes in MiB")
print("| figure | median | min | max |")
print("|---|--:|--:|--:|")
for name, values in figures.items():
    print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
