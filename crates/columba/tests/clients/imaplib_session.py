#!/usr/bin/env python3
"""A full IMAP session with Python's imaplib against a running Columba (driven by
crates/columba/tests/real_clients.rs). Exits non-zero with a message on the first failure.

Covers: STARTTLS and IMAPS, LOGIN, APPEND with flags and date, SELECT, SEARCH, FETCH of bodies,
headers, BODYSTRUCTURE and ENVELOPE, STORE, COPY, EXPUNGE, and IDLE woken by a second
connection's APPEND.
"""
import argparse
import email
import imaplib
import re
import ssl
import threading
import time

from imaptest import check, ok


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


MESSAGE = (
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from imaplib\r\n"
    b"Date: Tue, 03 Mar 2020 10:00:00 +0000\r\n"
    b"Message-ID: <imaplib-1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The quick brown fox jumps over the lazy dog.\r\n"
    b"--b1\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="data.bin"\r\n'
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--b1--\r\n"
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    a = ap.parse_args()

    # Cleartext connection upgraded with STARTTLS, then LOGIN.
    m = imaplib.IMAP4(a.host, a.port)
    check("STARTTLS" in m.capabilities, "STARTTLS advertised: %r" % (m.capabilities,))
    ok(m.starttls(ssl_context=tls_context()), "STARTTLS")
    ok(m.login(a.user, a.password), "LOGIN")
    # imaplib keeps its pre-login list; ask again, as RFC 3501 6.2.2 tells clients to.
    data = ok(m.capability(), "CAPABILITY after login")
    caps = data[0].decode().upper().split()
    check("IDLE" in caps and "UIDPLUS" in caps and "MOVE" in caps, "post-login caps %r" % (caps,))
    check(not any(c.startswith("AUTH=") for c in caps), "no AUTH= after login: %r" % (caps,))

    # The special-use folders exist from the first login, subscribed, with their attributes
    # (RFC 6154; the server's auto_create default, like Dovecot's auto = subscribe).
    data = ok(m.list('""', "%"), "LIST")
    listed = b"\n".join(data)
    for name, attr in [(b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"), (b"Trash", b"\\Trash"),
                       (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")]:
        check(attr in listed and b'"' + name + b'"' in listed, "%r listed with %r: %r" % (name, attr, listed))
    data = ok(m.lsub('""', "*"), "LSUB")
    check(any(b'"Sent"' in d for d in data), "Sent subscribed: %r" % data)
    ok(m.create("Saved"), "CREATE")
    date = imaplib.Time2Internaldate(time.mktime((2020, 3, 3, 11, 0, 0, 0, 0, -1)))
    data = ok(m.append("INBOX", "(\\Flagged $Label1)", date, MESSAGE), "APPEND")
    check(b"APPENDUID" in data[0], "APPENDUID in %r" % data)
    for i in range(3):
        msg = b"From: x@example.com\r\nSubject: filler %d\r\n\r\nfiller body %d\r\n" % (i, i)
        ok(m.append("INBOX", None, None, msg), "APPEND filler")

    data = ok(m.select("INBOX"), "SELECT")
    check(data == [b"4"], "EXISTS 4: %r" % data)

    data = ok(m.search(None, "FLAGGED"), "SEARCH FLAGGED")
    check(data == [b"1"], "SEARCH FLAGGED %r" % data)
    data = ok(m.search("UTF-8", "SUBJECT", "Grüße".encode()), "SEARCH SUBJECT utf-8")
    check(data == [b"1"], "SEARCH SUBJECT %r" % data)
    data = ok(m.search(None, "BODY", "\"lazy dog\""), "SEARCH BODY")
    check(data == [b"1"], "SEARCH BODY %r" % data)
    data = ok(m.uid("SEARCH", None, "SUBJECT", "filler"), "UID SEARCH")
    check(data == [b"2 3 4"], "UID SEARCH %r" % data)

    data = ok(m.fetch("1", "(BODY.PEEK[] RFC822.SIZE)"), "FETCH BODY[]")
    body = data[0][1]
    check(body == MESSAGE, "BODY[] equals what was appended")
    # The items come in the order asked, so the size follows the literal.
    rest = b"".join(d if isinstance(d, bytes) else d[0] for d in data)
    check(b"RFC822.SIZE %d" % len(MESSAGE) in rest, "RFC822.SIZE in %r" % rest)
    parsed = email.message_from_bytes(body)
    check(parsed.is_multipart() and len(parsed.get_payload()) == 2, "multipart parses")

    data = ok(m.fetch("1", "(BODYSTRUCTURE)"), "FETCH BODYSTRUCTURE")
    bs = data[0]
    check(b'("text" "plain" ("charset" "utf-8")' in bs, "text part in %r" % bs)
    check(b'"mixed" ("boundary" "b1")' in bs, "multipart/mixed in %r" % bs)
    check(b'("attachment" ("filename" "data.bin"))' in bs, "disposition in %r" % bs)

    data = ok(m.fetch("1", "(ENVELOPE)"), "FETCH ENVELOPE")
    env = data[0]
    check(b'"<imaplib-1@example.com>"' in env, "message-id in %r" % env)
    check(b'(("Alice Example" NIL "alice" "example.com"))' in env, "from in %r" % env)

    data = ok(m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH sections")
    parts = {k: v for k, v in [(d[0], d[1]) for d in data if isinstance(d, tuple)]}
    joined = b"".join(parts.values())
    check(b"The quick brown fox jumps over the lazy dog." in joined, "part 1 in %r" % parts)
    check(b"Content-Disposition: attachment" in joined, "2.MIME in %r" % parts)

    data = ok(m.fetch("2", "(FLAGS)"), "FETCH FLAGS")
    check(b"\\Seen" not in data[0], "not seen yet %r" % data)
    ok(m.fetch("2", "(BODY[TEXT])"), "FETCH BODY[TEXT]")
    data = ok(m.fetch("2", "(FLAGS)"), "FETCH FLAGS after")
    check(b"\\Seen" in data[0], "BODY[] set \\Seen: %r" % data)

    data = ok(m.store("3:4", "+FLAGS", "(\\Deleted)"), "STORE")
    check(len(data) == 2 and all(b"\\Deleted" in d for d in data), "STORE result %r" % data)
    data = ok(m.copy("1:2", "Saved"), "COPY")
    data = ok(m.expunge(), "EXPUNGE")
    check(data == [b"3", b"3"], "EXPUNGE responses %r" % data)
    data = ok(m.status("Saved", "(MESSAGES)"), "STATUS")
    check(b"MESSAGES 2" in data[0], "STATUS %r" % data)

    # IDLE, woken by an APPEND from a second (implicit TLS) connection.
    other = imaplib.IMAP4_SSL(a.host, a.tls_port, ssl_context=tls_context())
    ok(other.login(a.user, a.password), "second LOGIN")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    check(line.startswith(b"+"), "IDLE continuation %r" % line)

    def deliver():
        time.sleep(0.3)
        ok(other.append("INBOX", None, None, b"Subject: wake up\r\n\r\nnow\r\n"), "APPEND during IDLE")

    t = threading.Thread(target=deliver)
    t.start()
    started = time.time()
    line = m.readline()
    woke_after = time.time() - started
    t.join()
    check(re.match(rb"\* 3 EXISTS", line) is not None, "IDLE wake-up %r" % line)
    check(woke_after < 5, "woken within 5 s (%.2f s)" % woke_after)
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            check(b"OK" in line, "IDLE done %r" % line)
            break
    other.logout()

    ok(m.close(), "CLOSE")
    m.logout()
    print("imaplib session OK")


if __name__ == "__main__":
    main()
