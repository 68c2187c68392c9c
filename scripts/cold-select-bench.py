#!/usr/bin/env python3
"""Cold SELECT (an index build) on two servers alternately, without the first FETCH.

imap-bench.py's `cold` workload times the cold SELECT together with the first FETCH of every
ENVELOPE and BODYSTRUCTURE, which at a million messages takes minutes and allows one
repetition in a reasonable run. This measures only the SELECT, several rounds, A and B
alternately: each round runs the server's reset command (delete its index files; for
Columba, restart the process), connects, logs in and times `SELECT INBOX` from sending it to
the tagged OK. Run by scripts/bench-compare for the workload `coldselect`:

    cold-select-bench.py HOST:PORT:USER:PASS HOST:PORT:USER:PASS \
        --reset-a CMD --reset-b CMD [--rounds 3] [--label-a A] [--label-b B]
"""

import argparse
import re
import socket
import statistics
import subprocess
import time


def command(sock, file, tag, text):
    sock.sendall(tag + b" " + text.encode() + b"\r\n")
    untagged = []
    while True:
        line = file.readline()
        if not line:
            raise SystemExit("connection closed during " + text)
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            line += file.read(int(m.group(1))) + file.readline()
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise SystemExit("%s: %r" % (text, line))
            return untagged
        untagged.append(line)


def cold_select(spec, reset):
    """Seconds the SELECT took and the EXISTS count it reported."""
    subprocess.run(reset, shell=True, check=True)
    host, port, user, password = spec.split(":")[:4]
    sock = socket.create_connection((host, int(port)), timeout=3600)
    file = sock.makefile("rb")
    file.readline()
    command(sock, file, b"a", "LOGIN %s %s" % (user, password))
    start = time.perf_counter()
    lines = command(sock, file, b"b", "SELECT INBOX")
    took = time.perf_counter() - start
    exists = next((int(l.split()[1]) for l in lines if l.rstrip().endswith(b"EXISTS")), -1)
    command(sock, file, b"c", "LOGOUT")
    sock.close()
    return took, exists


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--reset-a", required=True)
    p.add_argument("--reset-b", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    args = p.parse_args()
    times = {args.label_a: [], args.label_b: []}
    counts = {}
    for r in range(args.rounds):
        for label, spec, reset in ((args.label_a, args.a, args.reset_a), (args.label_b, args.b, args.reset_b)):
            took, exists = cold_select(spec, reset)
            times[label].append(took)
            counts[label] = exists
            print("[%s] cold SELECT round %d/%d %s: %.3f s (%d EXISTS)"
                  % (time.strftime("%H:%M:%S"), r + 1, args.rounds, label, took, exists), flush=True)
    a = statistics.median(times[args.label_a])
    b = statistics.median(times[args.label_b])
    if counts[args.label_a] != counts[args.label_b]:
        print("warning: EXISTS differ: %r" % counts)
    print("%-44s %10s %10s %8s" % ("figure", args.label_a, args.label_b, "B/A"))
    print("%-44s %9.3fs %9.3fs %8.2f" % ("cold SELECT INBOX, median of %d" % args.rounds, a, b, b / a))
    print("  all rounds: %s %s; %s %s" % (
        args.label_a, " ".join("%.3f" % t for t in times[args.label_a]),
        args.label_b, " ".join("%.3f" % t for t in times[args.label_b])))


if __name__ == "__main__":
    main()
