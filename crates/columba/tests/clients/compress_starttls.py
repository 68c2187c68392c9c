#!/usr/bin/env python3
"""COMPRESS=DEFLATE (RFC 4978) after STARTTLS against a running Columba (driven by
crates/columba/tests/extensions_imaplib.rs). imaplib does STARTTLS and LOGIN; after
COMPRESS DEFLATE the script speaks raw DEFLATE inside TLS with Python's zlib: NOOP, an
APPEND, IDLE with another connection's APPEND arriving as EXISTS, DONE and LOGOUT.
Exits non-zero with a message on the first failure.
"""
import argparse
import imaplib
import ssl
import time
import zlib

from imaptest import check, ok


class Deflated:
    """Raw DEFLATE both ways over a socket, a sync flush after each send."""

    def __init__(self, sock):
        self.sock = sock
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.text = b""

    def send(self, data):
        self.sock.sendall(self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH))

    def until(self, needle, timeout=10):
        deadline = time.time() + timeout
        while needle not in self.text:
            check(time.time() < deadline, "timed out waiting for %r; got %r" % (needle, self.text))
            self.sock.settimeout(max(0.1, deadline - time.time()))
            raw = self.sock.recv(65536)
            check(raw != b"", "connection closed waiting for %r" % needle)
            self.text += self.decomp.decompress(raw)
        end = self.text.index(needle)
        end = self.text.find(b"\r\n", end)
        got, self.text = self.text[: end + 2], self.text[end + 2:]
        return got


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    args = p.parse_args()

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4("127.0.0.1", args.port)
    ok(m.starttls(ssl_context=ctx), "STARTTLS")
    ok(m.login(args.user, args.password), "LOGIN")
    caps = ok(m.capability(), "CAPABILITY")[0].decode().split()
    check("COMPRESS=DEFLATE" in caps, "COMPRESS=DEFLATE in %r" % caps)

    m.send(b"c COMPRESS DEFLATE\r\n")
    line = m.readline()
    check(line == b"c OK DEFLATE active\r\n", "COMPRESS: %r" % line)
    z = Deflated(m.sock)

    z.send(b"n NOOP\r\n")
    check(z.until(b"n OK") == b"n OK NOOP completed.\r\n", "NOOP")
    message = b"Subject: compressed\r\n\r\n" + b"squeeze me\r\n" * 2000
    z.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\n")
    check(b"[APPENDUID" in z.until(b"a OK"), "APPEND")
    z.send(b"s SELECT INBOX\r\n")
    check(b"* 1 EXISTS" in z.until(b"s OK"), "SELECT")
    z.send(b"f FETCH 1 RFC822.SIZE\r\n")
    got = z.until(b"f OK")
    check(b"RFC822.SIZE %d" % len(message) in got, "FETCH: %r" % got)

    # IDLE: the continuation and another session's APPEND come without further input.
    z.send(b"i IDLE\r\n")
    check(z.until(b"+ ") == b"+ idling\r\n", "IDLE continuation")
    other = imaplib.IMAP4("127.0.0.1", args.port)
    ok(other.login(args.user, args.password), "LOGIN (other)")
    ok(other.append("INBOX", None, None, b"Subject: two\r\n\r\nx\r\n"), "APPEND (other)")
    other.logout()
    check(z.until(b"EXISTS") == b"* 2 EXISTS\r\n", "EXISTS during IDLE")
    z.send(b"DONE\r\n")
    check(z.until(b"i OK").endswith(b"i OK Idle completed.\r\n"), "DONE")
    z.send(b"z LOGOUT\r\n")
    check(z.until(b"z OK").startswith(b"* BYE"), "LOGOUT")
    print("compress after STARTTLS OK")


if __name__ == "__main__":
    main()
