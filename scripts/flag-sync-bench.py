#!/usr/bin/env python3
"""Flag sync, `UID FETCH 1:* (UID FLAGS)`, on two servers alternately, timed three ways.

imap-bench.py's `flags` figure is the time its Python client takes to read and split every
response line. At 100,000 messages that client needs about 45 ms for the lines alone, so a
server that answers faster than the client reads is measured as the client's speed. This
script times the same command, on one logged-in connection per server, A and B alternately:

  parsed    the way imap-bench.py reads it (a line at a time, looking for literals and the tag);
  raw       receiving until the tagged OK arrives, without looking at the lines: the time the
            server takes to produce and send the response, the client doing almost nothing;
  replayed  the `parsed` reading again over the response `raw` received, from memory: what
            the client alone needs, the least `parsed` can be whatever the server.

It also checks that both servers sent the same number of FETCH lines. Run by
scripts/bench-compare for the workload `flagsync`:

    flag-sync-bench.py HOST:PORT:USER:PASS HOST:PORT:USER:PASS [--reps 9] [--label-a A] [--label-b B]
"""

import socket
import time

from bench_client import print_medians, two_servers


def read_tagged(buf, start, tag, fill):
    """imap-bench.py's loop: up to the tagged OK of `tag` from `start`, honouring literals,
    calling `fill` for more bytes. Returns where the next response starts and the number of
    untagged lines."""
    tag += b" "
    scan = start
    lines = 0
    while True:
        i = buf.find(b"\r\n", scan)
        if i < 0:
            scan = max(scan, len(buf) - 1)
            fill()
            continue
        if i > start and buf[i - 1] == 0x7D:
            j = buf.rfind(b"{", start, i)
            if j >= 0:
                num = bytes(buf[j + 1:i - 1]).rstrip(b"+")
                if num.isdigit():
                    need = i + 2 + int(num)
                    while len(buf) < need:
                        fill()
                    scan = need
                    continue
        if buf.startswith(tag, start):
            if not buf.startswith(tag + b"OK", start):
                raise SystemExit("%r" % bytes(buf[start:i]))
            return i + 2, lines
        lines += 1
        start = scan = i + 2


class Conn:
    def __init__(self, spec):
        host, port, user, password = spec.split(":")[:4]
        self.sock = socket.create_connection((host, int(port)), timeout=600)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.tags = 0
        self.last = None
        self.readline()
        self.parsed("LOGIN %s %s" % (user, password))
        self.parsed("SELECT INBOX")

    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise SystemExit("connection closed by server")
        self.buf += d

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _send(self, text):
        self.tags += 1
        tag = b"t%d" % self.tags
        del self.buf[:self.pos]
        self.pos = 0
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        return tag

    def parsed(self, text):
        """Reads line by line as imap-bench.py's read_tagged does; the number of untagged lines."""
        tag = self._send(text)
        self.pos, lines = read_tagged(self.buf, self.pos, tag, self._fill)
        return lines

    def replayed(self):
        """The same reading over the last response, already in memory: the client's own time."""
        if self.last is None:
            raise SystemExit("nothing received to replay")
        tag, data = self.last
        buf = bytearray(data)

        def fill():
            raise SystemExit("the replayed response ends early")

        return read_tagged(buf, 0, tag, fill)[1]

    def raw(self, text):
        """Receives until the tagged OK arrives; the number of untagged lines, counted after."""
        tag = self._send(text)
        end = b"\r\n" + tag + b" OK"
        buf = self.buf
        at = -1
        while at < 0 and not buf.startswith(tag + b" OK"):
            before = len(buf)
            self._fill()
            at = buf.find(end, max(0, before - len(end)))
        took = time.perf_counter()
        lines = buf.count(b"\r\n", 0, at + 2) if at >= 0 else 0
        while buf.find(b"\r\n", at + 2) < 0:
            self._fill()
        self.pos = buf.find(b"\r\n", at + 2) + 2
        self.last = (tag, bytes(buf[:self.pos]))
        return took, lines


def timed(f, *a):
    """Seconds from the call until the tagged OK was read (or the time `f` reports), and lines."""
    start = time.perf_counter()
    r = f(*a)
    end = time.perf_counter()
    if isinstance(r, tuple):
        end, r = r
    return end - start, r


def main():
    args = two_servers(__doc__, 9)
    labels = (args.label_a, args.label_b)
    conns = {args.label_a: Conn(args.a), args.label_b: Conn(args.b)}
    cmd = "UID FETCH 1:* (UID FLAGS)"
    times = {(label, way): [] for label in labels for way in ("parsed", "raw", "replayed")}
    lines = {}
    for _ in range(args.reps):
        for label in labels:
            for way in ("parsed", "raw"):
                took, n = timed(getattr(conns[label], way), cmd)
                times[(label, way)].append(took)
                lines.setdefault(label, set()).add(n)
            took, n = timed(conns[label].replayed)
            times[(label, "replayed")].append(took)
            lines[label].add(n)
    for label in labels:
        if len(lines[label]) != 1:
            print("warning: %s sent different line counts: %r" % (label, sorted(lines[label])))
    if lines[args.label_a] != lines[args.label_b]:
        print("warning: line counts differ: %r" % lines)
    print_medians(args, [
        ("UID FETCH 1:* (UID FLAGS), " + what, times[(args.label_a, way)], times[(args.label_b, way)])
        for way, what in (("parsed", "read line by line as imap-bench.py"),
                          ("raw", "received until the tagged OK"),
                          ("replayed", "the same reading over bytes in memory, no server"))
    ])
    print("lines: %s" % ", ".join("%s %s" % (l, sorted(lines[l])) for l in labels))


if __name__ == "__main__":
    main()
