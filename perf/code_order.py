#!/usr/bin/env python3
"""perf/code_order.py BINARY CALLGRIND_OUT ORDER_FILE: the managed methods a callgrind run of the AOT
BINARY executed (callgrind --dump-instr=yes: every executed instruction's address), in address
order, one mangled symbol a line: the IlcOrderFile of src/AotProxy/AotProxy.csproj. Symbols come
from BINARY.dbg. Called by perf/code_order.sh."""
import bisect
import re
import subprocess
import sys

# valgrind loads a position-independent executable at this base; code it has no symbols for (the
# binary's managed code section) is reported at its run-time address, under the object "???"
PIE_BASE = 0x108000


def main(binary, cg, out):
    sections = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    m = re.search(r"__managedcode\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", sections)
    code_start, code_end = int(m.group(1), 16), int(m.group(1), 16) + int(m.group(2), 16)
    nm = subprocess.run(["nm", "-S", "--defined-only", binary + ".dbg"], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in nm.splitlines():
        p = line.split(None, 3)
        if len(p) == 4 and p[2] in "tT":
            syms.append((int(p[0], 16), int(p[1], 16), p[3].strip()))
    syms.sort()
    starts = [s[0] for s in syms]
    names, ob, pos, executed = {}, "", 0, {}
    for line in open(cg):
        if line.startswith("ob="):
            m = re.match(r"\((\d+)\)(?: (.*))?$", line[3:].strip())
            if m and m.group(2) is not None:
                names[m.group(1)] = m.group(2)
            ob = names.get(m.group(1), "") if m else line[3:].strip()
            continue
        if line.startswith("cob="):
            m = re.match(r"\((\d+)\) (.*)$", line[4:].strip())
            if m:
                names[m.group(1)] = m.group(2)
            continue
        if not line[:1] or line[0] not in "0123456789+-*" or line.startswith("calls="):
            continue
        tok = line.split()[0]
        if tok.startswith("0x"):
            pos = int(tok, 16)
        elif tok[0] in "+-":
            step = int(tok[1:], 16) if tok[1:].startswith("0x") else int(tok[1:])
            pos += step if tok[0] == "+" else -step
        elif tok != "*":
            continue
        if ob == "???":
            address = pos - PIE_BASE
        elif ob.endswith("/aotproxy"):
            address = pos
        else:
            continue
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and syms[i][0] <= address < syms[i][0] + syms[i][1]:
            executed.setdefault(syms[i][2], syms[i][0])
    # the managed code section only: ILC orders its own methods, the runtime's C++ is linked as it is
    methods = sorted((a, n) for n, a in executed.items() if code_start <= a < code_end)
    with open(out, "w") as f:
        for _, n in methods:
            f.write(n + "\n")
    print(f"{len(methods)} managed methods executed -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
