#!/usr/bin/env python3
"""QRESYNC resynchronisation (RFC 7162 3.2.5), measured on two servers alternately.

A client that knows the INBOX up to a mod-sequence comes back after another client changed
the flags of N messages and expunged N others; the figure is the time of its
`SELECT INBOX (QRESYNC (uidvalidity modseq 1:uidnext))`, from sending it to the tagged OK,
with the number of VANISHED UIDs and FETCH responses it got (which must match between
servers). Run by scripts/bench-compare for the workload `qresync`:

    qresync-bench.py HOST:PORT:USER:PASS HOST:PORT:USER:PASS [--changes 1000] [--rounds 3]
"""

import argparse
import re
import statistics
import time

from bench_client import Client


def code(lines, name):
    for line in lines:
        m = re.search(rb"\[" + name.encode() + rb" (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise SystemExit("no %s in SELECT" % name)


def uid_set(uids):
    return ",".join(str(u) for u in uids)


def round_once(spec, changes, offset):
    # The client that will come back: what it knew.
    c = Client(spec).login()
    c.command("ENABLE QRESYNC")
    lines, _ = c.command("SELECT INBOX")
    uidvalidity = code(lines, "UIDVALIDITY")
    modseq = code(lines, "HIGHESTMODSEQ")
    uidnext = code(lines, "UIDNEXT")
    found, _ = c.command("UID SEARCH ALL")
    uids = [int(u) for u in found[0].split()[2:]] if found else []
    c.close()
    if len(uids) < offset + 2 * changes:
        raise SystemExit("mailbox too small for another round")
    flagged = uids[offset : offset + changes]
    expunged = uids[offset + changes : offset + 2 * changes]
    # Another client changes flags and expunges.
    o = Client(spec).login()
    o.command("SELECT INBOX")
    o.command("UID STORE %s +FLAGS.SILENT (\\Flagged)" % uid_set(flagged))
    o.command("UID STORE %s +FLAGS.SILENT (\\Deleted)" % uid_set(expunged))
    o.command("UID EXPUNGE %s" % uid_set(expunged))
    o.close()
    # The resync.
    c = Client(spec).login()
    c.command("ENABLE QRESYNC")
    started = time.perf_counter()
    lines, _ = c.command(
        "SELECT INBOX (QRESYNC (%d %d 1:%d))" % (uidvalidity, modseq, uidnext - 1)
    )
    elapsed = time.perf_counter() - started
    c.close()
    vanished = 0
    for line in lines:
        if line.startswith(b"* VANISHED (EARLIER) "):
            for part in line[21:].strip().split(b","):
                lo, _, hi = part.partition(b":")
                vanished += int(hi or lo) - int(lo) + 1
    fetches = sum(1 for line in lines if re.match(rb"\* \d+ FETCH ", line))
    return elapsed, vanished, fetches


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    p.add_argument("--changes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    times = {args.label_a: [], args.label_b: []}
    for r in range(args.rounds):
        for label, spec in ((args.label_a, args.a), (args.label_b, args.b)):
            elapsed, vanished, fetches = round_once(spec, args.changes, r * args.changes)
            times[label].append(elapsed)
            print("  round %d %-8s %8.1f ms  VANISHED %d  FETCH %d"
                  % (r + 1, label, elapsed * 1000, vanished, fetches))
    a = statistics.median(times[args.label_a])
    b = statistics.median(times[args.label_b])
    print("qresync: SELECT (QRESYNC) after %d flag changes + %d expunges: %s %.1f ms, %s %.1f ms, "
          "%s/%s %.2f" % (args.changes, args.changes, args.label_a, a * 1000, args.label_b,
                          b * 1000, args.label_b, args.label_a, b / a))


if __name__ == "__main__":
    main()
