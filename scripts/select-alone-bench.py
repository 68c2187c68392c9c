#!/usr/bin/env python3
"""SELECT by a client that has the mailbox to itself, on two servers alternately.

imap-bench.py's warm SELECT runs while its own session keeps INBOX selected, so a server that
shares one message list among sessions always finds it ready. A phone checking mail is alone:
it connects, logs in, selects, logs out. This times, A and B alternately, `SELECT INBOX` on a
new connection with no other connection open:

  unchanged      nothing changed since the previous SELECT;
  after a STORE  another connection just changed one message's \\Seen (and logged out), so the
                 mailbox is not as the last SELECT left it; the [UNSEEN n] both servers report
                 is compared;
  after a restart  (with --restart-b CMD, and --restart-a CMD if given) the server was
                 restarted, untimed, keeping its index files: the first SELECT of a new process,
                 which opens the mailbox's index. Dovecot runs a new `imap` process for every
                 connection, so each of its SELECTs is that case; Columba keeps a user's mailbox
                 open in one process while it has connections (and 30 s after).

Run by scripts/bench-compare for the workload `selectalone`:

    select-alone-bench.py HOST:PORT:USER:PASS HOST:PORT:USER:PASS [--reps 7] [--label-a A]
        [--label-b B] [--restart-a CMD] [--restart-b CMD]
"""

import subprocess
import time

from bench_client import Client, print_medians, two_servers


def timed_select(spec):
    """Seconds SELECT took on a new connection, and its [UNSEEN n] (None without one)."""
    c = Client(spec).login()
    start = time.perf_counter()
    lines, _ = c.command("SELECT INBOX")
    took = time.perf_counter() - start
    c.close()
    unseen = next((l.split(b"[UNSEEN ")[1].split(b"]")[0] for l in lines if b"[UNSEEN " in l), None)
    return took, unseen


def change_one(spec, n):
    """Another client turns message n's \\Seen around."""
    c = Client(spec).login()
    c.command("SELECT INBOX")
    fetched, _ = c.command("FETCH %d (FLAGS)" % n)
    seen = any(b"\\Seen" in line for line in fetched)
    c.command("STORE %d %sFLAGS.SILENT (\\Seen)" % (n, "-" if seen else "+"))
    c.close()


def main():
    args = two_servers(__doc__, 7, (("--restart-a", "restarts server A keeping its index"),
                                    ("--restart-b", "restarts server B keeping its index")))
    servers = ((args.label_a, args.a), (args.label_b, args.b))
    restart = {args.label_a: args.restart_a, args.label_b: args.restart_b}
    kinds = ["unchanged", "store"] + (["restart"] if args.restart_b else [])
    times = {(label, kind): [] for label, _ in servers for kind in kinds}
    unseen = {label: [] for label, _ in servers}
    for label, spec in servers:
        timed_select(spec)  # whatever the previous workload left to sync is not timed
    for _ in range(args.reps):
        for label, spec in servers:
            # A STORE's renames make both servers list cur/ again once Maildir's one-second
            # slack has passed (Dovecot's MAILDIR_SYNC_SECS): let that happen untimed.
            time.sleep(1.1)
            timed_select(spec)
            took, _ = timed_select(spec)
            times[(label, "unchanged")].append(took)
            if "restart" in kinds:
                # A quiet mailbox, as when a server's process for the user has ended: only the
                # opening of the index is timed, not a rescan of a directory changed just now.
                if restart[label]:
                    subprocess.run(restart[label], shell=True, check=True)
                took, _ = timed_select(spec)
                times[(label, "restart")].append(took)
            change_one(spec, 2)
            took, u = timed_select(spec)
            times[(label, "store")].append(took)
            unseen[label].append(u)
    if unseen[args.label_a] != unseen[args.label_b]:
        print("warning: [UNSEEN] differs: %r" % unseen)
    print_medians(args, [
        (what, times[(args.label_a, kind)], times[(args.label_b, kind)])
        for kind, what in (("unchanged", "SELECT INBOX alone, unchanged since the last"),
                           ("store", "SELECT INBOX alone, after another's STORE"),
                           ("restart", "SELECT INBOX alone, first after a restart"))
        if kind in kinds
    ])


if __name__ == "__main__":
    main()
