"""A minimal IMAP client for the benchmark scripts beside it (not imap-bench.py's, whose
reading loop is part of what it measures): one connection, commands sent one at a time, the
untagged lines of each returned with literals joined to their line."""

import re
import socket


class Client:
    def __init__(self, spec):
        host, port, self.user, self.password = spec.split(":")[:4]
        self.sock = socket.create_connection((host, int(port)), timeout=3600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.n = 0

    def command(self, text):
        """Sends a command, returns its untagged lines and the tagged one."""
        self.n += 1
        tag = b"q%d" % self.n
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise SystemExit("connection closed during " + text)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.file.read(int(m.group(1)))
                line += self.file.readline()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise SystemExit("%s: %r" % (text, line))
                return lines, line
            lines.append(line)

    def login(self):
        self.command("LOGIN %s %s" % (self.user, self.password))
        return self

    def close(self):
        try:
            self.command("LOGOUT")
        except SystemExit:
            pass
        self.sock.close()


def two_servers(doc, reps, options=()):
    """The command line every side-by-side script takes: two HOST:PORT:USER:PASS, --reps and
    the two labels, and the script's own `options` (name, help) taking a string each."""
    import argparse

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--reps", type=int, default=reps)
    p.add_argument("--label-a", default="A")
    p.add_argument("--label-b", default="B")
    for name, text in options:
        p.add_argument(name, help=text)
    return p.parse_args()


def print_medians(args, rows):
    """One line per (figure, A's times, B's times): the medians in milliseconds and B/A."""
    import statistics

    width = max(len(figure) for figure, _, _ in rows) + 2
    print("%-*s %10s %10s %8s" % (width, "figure (median of %d)" % args.reps, args.label_a, args.label_b, "B/A"))
    for figure, a, b in rows:
        a, b = statistics.median(a), statistics.median(b)
        print("%-*s %8.2fms %8.2fms %8.2f" % (width, figure, a * 1e3, b * 1e3, b / a))
