#!/usr/bin/env python3
"""CATENATE (RFC 4469) and URL-PARTIAL through Python's imaplib against a running Columba
(driven by crates/columba/tests/extensions_imaplib.rs). Exits non-zero with a message on the
first failure.

imaplib has no CATENATE helper, but it can send several synchronizing literals in one command
the way it does for AUTHENTICATE: a bound method as `literal` is asked for the next piece at
each continuation request. So every TEXT literal goes through imaplib's own continuation
handling: the command line ends in `TEXT {n}`, imaplib waits for `+`, then sends the literal
and the text up to the next `TEXT {n}` (or the closing parenthesis).
"""
import imaplib
import re

from imaptest import arguments, check, ok

SOURCE = (b"Subject: source\r\n"
          b"MIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=b\r\n"
          b"\r\n"
          b"--b\r\n"
          b"Content-Type: text/plain\r\n"
          b"\r\n"
          b"first part\r\n"
          b"--b--\r\n")
SOURCE_HEADER = SOURCE[:SOURCE.index(b"\r\n\r\n") + 4]


class Pieces:
    """What imaplib sends after each continuation request, in order."""

    def __init__(self, pieces):
        self.pieces = list(pieces)

    def next_piece(self, _continuation):
        return self.pieces.pop(0)


def catenate(m, args, parts):
    """`APPEND args CATENATE (parts)`, each part ("TEXT", bytes), ("TEXT8", bytes) for a
    literal8, or ("URL", str). Returns imaplib's (typ, data)."""
    pieces = []
    current = b"("
    for kind, value in parts:
        if current != b"(":
            current += b" "
        if kind == "URL":
            current += b'URL "' + value.encode() + b'"'
        else:
            tilde = b"~" if kind == "TEXT8" else b""
            current += b"TEXT " + tilde + b"{%d}" % len(value)
            pieces.append(current)
            current = value
    pieces.append(current + b")")
    if len(pieces) > 1:
        m.literal = Pieces(pieces[1:]).next_piece
    return m._simple_command("APPEND", *args, "CATENATE", pieces[0])


def appenduid(data):
    found = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    check(found is not None, "APPENDUID in %r" % data)
    return int(found.group(1)), int(found.group(2))


def fetch_body(m, uid):
    data = ok(m.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH %d BODY.PEEK[]" % uid)
    check(isinstance(data[0], tuple), "FETCH returned a literal: %r" % data)
    return data[0][1]


def count(m, mailbox):
    data = ok(m.status(mailbox, "(MESSAGES)"), "STATUS %s" % mailbox)
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def main():
    args = arguments()
    m = imaplib.IMAP4("127.0.0.1", args.port)
    ok(m.login(args.user, args.password), "LOGIN")
    caps = ok(m.capability(), "CAPABILITY")[0].decode().split()
    for cap in ["CATENATE", "URL-PARTIAL"]:
        check(cap in caps, "capability %s in %r" % (cap, caps))

    ok(m.append("INBOX", None, None, SOURCE), "APPEND source")
    ok(m.select("INBOX"), "SELECT INBOX")
    validity = int(m.untagged_responses["UIDVALIDITY"][0])

    # TEXT, a part of the selected mailbox's message, TEXT: the result is exactly the parts.
    intro = b"Subject: forwarded\r\n\r\nSee: "
    outro = b"\r\n-- \r\nsig\r\n"
    typ, data = catenate(m, ["INBOX", "(\\Seen)"],
                         [("TEXT", intro), ("URL", ";UID=1/;SECTION=1"), ("TEXT", outro)])
    check(typ == "OK", "CATENATE TEXT URL TEXT: %s %r" % (typ, data))
    got_validity, uid = appenduid(data)
    check(got_validity == validity, "APPENDUID validity %d vs %d" % (got_validity, validity))
    body = fetch_body(m, uid)
    check(body == intro + b"first part" + outro, "catenated message: %r" % body)

    # An absolute URL naming this user on the address the client connected to, with
    # UIDVALIDITY and PARTIAL (URL-PARTIAL), and a URL-only message without any literal.
    url = "imap://%s@127.0.0.1:%d/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER/;PARTIAL=0.16" % (
        args.user, args.port, validity)
    typ, data = catenate(m, ["INBOX"], [("URL", url), ("URL", "/INBOX/;UID=1/;SECTION=1")])
    check(typ == "OK", "CATENATE absolute URL: %s %r" % (typ, data))
    body = fetch_body(m, appenduid(data)[1])
    check(body == SOURCE_HEADER[:16] + b"first part", "URL-only message: %r" % body)

    # BADURL: the server answers NO instead of a continuation for the TEXT literal after a
    # bad URL, and nothing is stored.
    before = count(m, "INBOX")
    bad = "/INBOX;UIDVALIDITY=%d/;UID=1" % (validity + 1)
    typ, data = catenate(m, ["INBOX"], [("URL", bad), ("TEXT", b"never sent")])
    check(typ == "NO" and b"[BADURL " + bad.encode() + b"]" in data[0],
          "BADURL for a stale UIDVALIDITY: %s %r" % (typ, data))
    # MULTIAPPEND (RFC 3502): the second message's bad URL keeps the first out too.
    pieces = Pieces([b"Subject: one\r\n\r\n1) CATENATE (URL \"/INBOX/;UID=999\")"])
    m.literal = pieces.next_piece
    typ, data = m._simple_command("APPEND", "INBOX", "CATENATE", b"(TEXT {17}")
    check(typ == "NO" and b"[BADURL /INBOX/;UID=999]" in data[0],
          "MULTIAPPEND with a bad URL: %s %r" % (typ, data))
    check(count(m, "INBOX") == before, "nothing stored after BADURL")

    # NUL octets travel only in a literal8 (RFC 3516 4.4).
    binary = b"Subject: binary\r\n\r\nNUL:\x00."
    typ, data = catenate(m, ["INBOX"], [("TEXT", binary)])
    check(typ == "NO", "NUL in a plain TEXT literal: %s %r" % (typ, data))
    typ, data = catenate(m, ["INBOX"], [("TEXT8", binary)])
    check(typ == "OK", "NUL in a literal8 TEXT: %s %r" % (typ, data))
    uid = appenduid(data)[1]
    data = ok(m.uid("FETCH", str(uid), "(RFC822.SIZE)"), "FETCH RFC822.SIZE")
    check(b"RFC822.SIZE %d" % len(binary) in data[0], "size of the binary message: %r" % data)

    m.logout()
    print("imaplib catenate OK")


if __name__ == "__main__":
    main()
