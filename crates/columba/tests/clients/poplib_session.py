#!/usr/bin/env python3
"""POP3 sessions with Python's poplib against a running Columba (driven by
crates/columba/tests/pop3_clients.rs). Exits non-zero with a message on the first failure.

The messages in --expect (files named 1.eml, 2.eml, ... in the order they were appended over
IMAP) must be exactly what the server holds. Covers: CAPA, STLS and POP3S, USER/PASS and
AUTH PLAIN, STAT, LIST, UIDL, TOP, RETR (byte for byte, sizes as listed), DELE, RSET, QUIT, and
a reconnection that sees the deletions and the same UIDLs for the messages left.
"""
import argparse
import os
import poplib
import ssl
import sys


def check(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr)
        sys.exit(1)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def load(directory):
    messages = []
    n = 1
    while os.path.exists(os.path.join(directory, "%d.eml" % n)):
        with open(os.path.join(directory, "%d.eml" % n), "rb") as f:
            messages.append(f.read())
        n += 1
    return messages


def retr(pop, n):
    """RETR n, reassembled: poplib removes dot-stuffing and line ends."""
    resp, lines, octets = pop.retr(n)
    check(resp.startswith(b"+OK"), "RETR %d: %r" % (n, resp))
    return b"".join(line + b"\r\n" for line in lines), resp


def listing(pop):
    resp, lines, _ = pop.list()
    check(resp.startswith(b"+OK"), "LIST: %r" % resp)
    return {int(a): int(b) for a, b in (l.split() for l in lines)}


def uidls(pop):
    resp, lines, _ = pop.uidl()
    check(resp.startswith(b"+OK"), "UIDL: %r" % resp)
    return {int(a): b.decode() for a, b in (l.split() for l in lines)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--expect", required=True)
    args = ap.parse_args()
    expected = load(args.expect)
    check(len(expected) >= 4, "need at least four messages, have %d" % len(expected))

    # Cleartext, then STLS: CAPA before and after, USER/PASS over TLS.
    pop = poplib.POP3("127.0.0.1", args.port, timeout=30)
    check(pop.getwelcome().startswith(b"+OK"), "greeting %r" % pop.getwelcome())
    caps = pop.capa()
    for cap in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES", "PIPELINING", "STLS"):
        check(cap in caps, "CAPA lacks %s: %r" % (cap, caps))
    check(caps["SASL"] == ["PLAIN", "LOGIN"], "SASL mechanisms %r" % caps["SASL"])
    pop.stls(context=tls_context())
    check("STLS" not in pop.capa(), "STLS still offered over TLS")
    pop.user(args.user)
    check(pop.pass_(args.password).startswith(b"+OK"), "PASS")

    count, size = pop.stat()
    check(count == len(expected), "STAT count %d, expected %d" % (count, len(expected)))
    check(size == sum(len(m) for m in expected), "STAT size %d" % size)
    sizes = listing(pop)
    check(sizes == {i + 1: len(m) for i, m in enumerate(expected)}, "LIST %r" % sizes)
    for n in sizes:
        resp = pop._shortcmd("LIST %d" % n)
        check(resp == b"+OK %d %d" % (n, sizes[n]), "LIST %d: %r" % (n, resp))
    ids = uidls(pop)
    check(len(set(ids.values())) == len(expected), "UIDLs not unique: %r" % ids)
    check(all(len(u) == 16 for u in ids.values()), "UIDLs in Dovecot's format: %r" % ids)
    for i, message in enumerate(expected):
        got, resp = retr(pop, i + 1)
        check(got == message, "RETR %d: %d bytes differ from the %d appended" % (i + 1, len(got), len(message)))
        check(resp == b"+OK %d octets" % len(message), "RETR %d status %r" % (i + 1, resp))
    # TOP 1 0: the header and the blank line.
    resp, lines, _ = pop.top(1, 0)
    header = expected[0].split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    check(b"".join(l + b"\r\n" for l in lines) == header, "TOP 1 0: %r" % lines)

    # DELE, RSET undoes it; DELE two for real.
    pop.dele(1)
    check(pop.stat()[0] == len(expected) - 1, "STAT after DELE")
    try:
        pop.retr(1)
        check(False, "RETR of a deleted message succeeded")
    except poplib.error_proto as e:
        check(b"deleted" in e.args[0], "RETR of a deleted message: %r" % e.args)
    pop.rset()
    check(pop.stat()[0] == len(expected), "STAT after RSET")
    pop.dele(1)
    pop.dele(3)
    check(pop.quit().startswith(b"+OK"), "QUIT")

    # POP3S, AUTH PLAIN: the deletions took effect, the rest kept their UIDLs.
    pop = poplib.POP3_SSL("127.0.0.1", args.tls_port, context=tls_context(), timeout=30)
    check("STLS" not in pop.capa(), "STLS offered on POP3S")
    import base64
    cred = base64.b64encode(b"\0" + args.user.encode() + b"\0" + args.password.encode())
    resp = pop._shortcmd("AUTH PLAIN " + cred.decode())
    check(resp.startswith(b"+OK"), "AUTH PLAIN: %r" % resp)
    left = [m for i, m in enumerate(expected) if i not in (0, 2)]
    count, size = pop.stat()
    check(count == len(left), "STAT after reconnect: %d, expected %d" % (count, len(left)))
    check(size == sum(len(m) for m in left), "size after reconnect")
    new_ids = uidls(pop)
    check(list(new_ids.values()) == [u for n, u in sorted(ids.items()) if n not in (1, 3)],
          "UIDLs after reconnect %r vs %r" % (new_ids, ids))
    for i, message in enumerate(left):
        got, _ = retr(pop, i + 1)
        check(got == message, "RETR %d after reconnect" % (i + 1))
    pop.quit()

    # A wrong password is an -ERR [AUTH].
    pop = poplib.POP3("127.0.0.1", args.port, timeout=30)
    pop.user(args.user)
    try:
        pop.pass_("wrong")
        check(False, "wrong password accepted")
    except poplib.error_proto as e:
        check(e.args[0].startswith(b"-ERR [AUTH]"), "wrong password: %r" % e.args)
    pop.quit()
    print("poplib session OK")


if __name__ == "__main__":
    main()
