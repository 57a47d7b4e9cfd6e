#!/usr/bin/env python3
"""Per-stage breakdown of a `perf record -g` profile of AotProxy (perf/profile.sh).

    perf script -i aot.data -F comm,tid,ip,sym,dso | perf/profile_stages.py --requests N --cpu-us US

Each sample goes to one stage: the innermost frame of its stack (leaf first) that belongs to one
of the gateway's stage folders (src/AotProxy/<Folder>/), so a stage's share holds what it called
(CoreLib, the runtime, the kernel); a sample with no frame of ours goes to the innermost frame of
a known framework part (Kestrel, sockets, pipelines, the thread pool, the GC), else "other".
It prints, per stage: % of samples, of which in the kernel, and µs of CPU per request (the share
of the measured CPU per request). --self prints the hottest leaf functions of each stage.
"""
import argparse
import re
import sys
from collections import Counter, defaultdict

# NativeAOT names a method <assembly>_<namespace>_<type>__<method>: aotproxy_AotProxy_Http_...
OURS = re.compile(r"^aotproxy_AotProxy_([A-Za-z]+)_")
OURS_HOSTING = re.compile(r"^AotProxy_Hosting_")
FRAMEWORK = [
    ("GC", re.compile(r"(WKS::|SVR::|gc_heap|GCHeap|RhpNewFast|RhpNewArray|RhpGcAlloc|RhpAssignRef|RhpCheckedAssign|RhpByRefAssign)")),
    ("Kestrel HTTP/1.1", re.compile(r"Microsoft_AspNetCore_Server_Kestrel_Core_")),
    ("Kestrel sockets transport", re.compile(r"Microsoft_AspNetCore_Server_Kestrel_Transport_Sockets_")),
    ("Pipelines", re.compile(r"System_IO_Pipelines_")),
    ("Sockets engine", re.compile(r"System_Net_Sockets_")),
    ("ASP.NET Core HTTP abstractions", re.compile(r"Microsoft_AspNetCore_Http")),
    ("prometheus-net", re.compile(r"Prometheus_")),
    ("Thread pool / threading", re.compile(r"S_P_CoreLib_System_Threading_")),
]


SYSCALLS = re.compile(r"^__(?:x64|ia32)_sys_(\w+)$")


def component(sym):
    """The stage folder of ours, or the framework part, a managed or native frame belongs to; None."""
    m = OURS.match(sym)
    if m:
        return m.group(1)
    if OURS_HOSTING.match(sym):
        return "Hosting (parking, epoll)"
    for name, pattern in FRAMEWORK:
        if pattern.search(sym):
            return name
    return None


def classify(frames, innermost=False):
    """frames: [(sym, dso)] leaf first -> stage name.

    Default: the innermost frame of a stage of ours (what it called, Kestrel's and the kernel's
    work included, is the stage's). innermost: the innermost frame of any known part (ours or the
    framework's), and a kernel sample is named by its system call and the part that made it."""
    if innermost:
        name = next((c for c in (component(sym) for sym, _ in frames) if c), None)
        if frames and "kernel" in frames[0][1]:
            call = next((m.group(1) for m in (SYSCALLS.match(sym) for sym, _ in frames) if m), None)
            what = f"kernel: {call}" if call else "kernel: interrupts, softirq"
            return f"{what} <- {name or 'native'}"
        return name or "other"
    for sym, _ in frames:
        m = OURS.match(sym)
        if m:
            return m.group(1)
        if OURS_HOSTING.match(sym):
            return "Hosting (parking, epoll)"
    for sym, _ in frames:
        for name, pattern in FRAMEWORK:
            if pattern.search(sym):
                return name
    leaf_sym, leaf_dso = frames[0] if frames else ("?", "?")
    if "kernel" in leaf_dso:
        return "kernel, no managed caller"
    return "other"


def samples(stream):
    comm, frames = None, []
    for line in stream:
        if not line.strip():
            if comm is not None:
                yield comm, frames
            comm, frames = None, []
            continue
        if not line[0].isspace():
            if comm is not None:
                yield comm, frames
            comm, frames = line.split()[0], []
            # thread names hold spaces (".NET Sockets"): keep what precedes the tid
            m = re.match(r"^(.*?)\s+\d+(/\d+)?(\s|$)", line)
            if m:
                comm = m.group(1).strip()
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1]
        m = re.match(r"^(.*?)(?:\+0x[0-9a-f]+)?\s+\((.*)\)$", rest)
        sym, dso = (m.group(1), m.group(2)) if m else (rest, "?")
        frames.append((sym, dso))
    if comm is not None:
        yield comm, frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=0)
    ap.add_argument("--cpu-us", type=float, default=0.0, help="measured CPU µs per request")
    ap.add_argument("--self", type=int, default=0, help="top N leaf functions per stage")
    ap.add_argument("--innermost", action="store_true", help="attribute to the innermost known part, kernel samples by system call")
    args = ap.parse_args()
    stages, kernel, threads = Counter(), Counter(), Counter()
    leaves = defaultdict(Counter)
    total = 0
    for comm, frames in samples(sys.stdin):
        if not frames:
            continue
        total += 1
        stage = classify(frames, args.innermost)
        stages[stage] += 1
        threads[comm] += 1
        if "kernel" in frames[0][1]:
            kernel[stage] += 1
        leaves[stage][frames[0][0]] += 1
    if not total:
        sys.exit("no samples")
    print(f"{total} samples")
    print()
    print("| stage (innermost frame of ours) | % of samples | of which kernel | µs per request |")
    print("|---|---:|---:|---:|")
    for stage, n in stages.most_common():
        us = f"{args.cpu_us * n / total:.1f}" if args.cpu_us else "-"
        print(f"| {stage} | {100 * n / total:.1f}% | {100 * kernel[stage] / n:.0f}% | {us} |")
    print()
    print("| thread | % of samples |")
    print("|---|---:|")
    for comm, n in threads.most_common(8):
        print(f"| {comm} | {100 * n / total:.1f}% |")
    if args.self:
        for stage, n in stages.most_common():
            print()
            print(f"{stage}: hottest leaves")
            for sym, k in leaves[stage].most_common(args.self):
                print(f"  {100 * k / total:5.1f}%  {sym[:150]}")


if __name__ == "__main__":
    main()
