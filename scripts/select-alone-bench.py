#!/usr/bin/env python3
"""SELECT by a client that has the mailbox to itself, on two servers alternately.

imap-bench.py's warm SELECT runs while its own session keeps INBOX selected, so a server that
shares one message list among sessions always finds it ready. A phone checking mail is alone:
it connects, logs in, selects, logs out. This times, A and B alternately, `SELECT INBOX` on a
new connection with no other connection open:

  unchanged      nothing changed since the previous SELECT;
  after a STORE  another connection just changed one message's \\Seen (and logged out), so the
                 mailbox is not as the last SELECT left it; the [UNSEEN n] both servers report
                 is compared.

Run by scripts/bench-compare for the workload `selectalone`:

    select-alone-bench.py HOST:PORT:USER:PASS HOST:PORT:USER:PASS [--reps 7] [--label-a A] [--label-b B]
"""

import argparse
import socket
import statistics
import time


class Conn:
    def __init__(self, spec):
        host, port, user, password = spec.split(":")[:4]
        self.sock = socket.create_connection((host, int(port)), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.command(b"a", "LOGIN %s %s" % (user, password))

    def command(self, tag, text):
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise SystemExit("connection closed during " + text)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("%s: %r" % (text, line))
                return lines
            lines.append(line)

    def close(self):
        self.command(b"z", "LOGOUT")
        self.sock.close()


def timed_select(spec):
    """Seconds SELECT took on a new connection, and its [UNSEEN n] (None without one)."""
    c = Conn(spec)
    start = time.perf_counter()
    lines = c.command(b"s", "SELECT INBOX")
    took = time.perf_counter() - start
    c.close()
    unseen = next((l.split(b"[UNSEEN ")[1].split(b"]")[0] for l in lines if b"[UNSEEN " in l), None)
    return took, unseen


def change_one(spec, n, seen):
    c = Conn(spec)
    c.command(b"s", "SELECT INBOX")
    c.command(b"t", "STORE %d %sFLAGS.SILENT (\\Seen)" % (n, "+" if seen else "-"))
    c.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    args = p.parse_args()
    servers = ((args.label_a, args.a), (args.label_b, args.b))
    times = {(label, kind): [] for label, _ in servers for kind in ("unchanged", "store")}
    unseen = {label: [] for label, _ in servers}
    for label, spec in servers:
        timed_select(spec)  # whatever the previous workload left to sync is not timed
    for rep in range(args.reps):
        for label, spec in servers:
            # A STORE's renames make both servers list cur/ again once Maildir's one-second
            # slack has passed (Dovecot's MAILDIR_SYNC_SECS): let that happen untimed.
            time.sleep(1.1)
            timed_select(spec)
            took, _ = timed_select(spec)
            times[(label, "unchanged")].append(took)
            # Alternately clears and sets \Seen of the same message, so the mailbox ends as it
            # began after an even number of repetitions.
            change_one(spec, 2, rep % 2 == 1)
            took, u = timed_select(spec)
            times[(label, "store")].append(took)
            unseen[label].append(u)
    if unseen[args.label_a] != unseen[args.label_b]:
        print("warning: [UNSEEN] differs: %r" % unseen)
    print("%-58s %10s %10s %8s" % ("figure (median of %d)" % args.reps, args.label_a, args.label_b, "B/A"))
    for kind, what in (("unchanged", "SELECT INBOX alone, unchanged since the last"),
                       ("store", "SELECT INBOX alone, after another's STORE")):
        a = statistics.median(times[(args.label_a, kind)])
        b = statistics.median(times[(args.label_b, kind)])
        print("%-58s %8.2fms %8.2fms %8.2f" % (what, a * 1e3, b * 1e3, b / a))


if __name__ == "__main__":
    main()
