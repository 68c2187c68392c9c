#!/usr/bin/env python3
"""An IMAP and a POP3 session with Python's imaplib and poplib against a Columba whose mail is
in mbox files (driven by crates/columba/tests/mbox_imaplib.rs). The INBOX starts as the three
messages procmail delivered in tests/fixtures/mbox/procmail.mbox. Exits non-zero with a message
on the first failure; prints "mbox session OK" at the end.
"""
import argparse
import imaplib
import poplib
import re

from imaptest import check, ok


def fetch_all(imap):
    """{uid: (flags, size, body)} of every message."""
    data = ok(imap.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])"), "FETCH")
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        head = head.decode()
        uid = int(re.search(r"UID (\d+)", head).group(1))
        flags = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", head).group(1).split() if f != "\\Recent")
        size = int(re.search(r"RFC822.SIZE (\d+)", head).group(1))
        out[uid] = (flags, size, body)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pop3-port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    a = p.parse_args()

    imap = imaplib.IMAP4("127.0.0.1", a.port)
    ok(imap.login(a.user, a.password), "LOGIN")
    count = ok(imap.select("INBOX"), "SELECT")
    check(count == [b"3"], "SELECT INBOX: %r" % count)
    messages = fetch_all(imap)
    check(sorted(messages) == [1, 2, 3], "UIDs %r" % sorted(messages))
    first = messages[1][2]
    check(first.startswith(b"From: alice@example.com\r\nSubject: first\r\n\r\n"), "first: %r" % first)
    # procmail's quoting undone; no metadata header shown.
    check(b"\r\nFrom the body\r\n" in first, "unquoted body: %r" % first)
    for uid, (flags, size, body) in messages.items():
        check(size == len(body), "UID %d: RFC822.SIZE %d for %d bytes" % (uid, size, len(body)))
        check(b"X-UID" not in body and b"Status:" not in body, "metadata shown: %r" % body)
    found = ok(imap.uid("SEARCH", None, "BODY", "X-UID"), "SEARCH")
    check(found == [b""], "SEARCH finds the hidden X-UID header: %r" % found)

    ok(imap.uid("STORE", "1", "+FLAGS", "(\\Seen \\Flagged work)"), "STORE")
    ok(imap.uid("STORE", "2", "+FLAGS", "(\\Deleted)"), "STORE")
    ok(imap.expunge(), "EXPUNGE")
    typ, data = imap.append("INBOX", "(\\Answered)", None, b"Subject: appended\r\n\r\nFrom imaplib\r\n")
    check(typ == "OK" and b"APPENDUID" in data[0], "APPEND: %r" % data)
    uid = int(data[0].split()[2].rstrip(b"]"))
    check(uid == 4, "APPENDUID %d" % uid)
    messages = fetch_all(imap)
    check(sorted(messages) == [1, 3, 4], "after EXPUNGE and APPEND: %r" % sorted(messages))
    check(messages[1][0] == ["\\Flagged", "\\Seen", "work"], "flags of 1: %r" % messages[1][0])
    check(messages[4][0] == ["\\Answered"], "flags of 4: %r" % messages[4][0])
    check(messages[4][2] == b"Subject: appended\r\n\r\nFrom imaplib\r\n", "4: %r" % messages[4][2])

    ok(imap.create("work/2026"), "CREATE")
    ok(imap.subscribe("work/2026"), "SUBSCRIBE")
    typ, data = imap.append("work/2026", None, None, b"Subject: filed\r\n\r\nfiled\r\n")
    check(typ == "OK", "APPEND to work/2026: %r" % data)
    listed = ok(imap.list(), "LIST")
    names = sorted(l.decode().rsplit(" ", 1)[1].strip('"') for l in listed)
    # Folders the server creates by itself (Drafts, Sent...) may be there too; the control
    # directory and the subscription files never are.
    check({"INBOX", "work", "work/2026"} <= set(names), "LIST: %r" % names)
    check(not any(n.startswith(".") or "/." in n for n in names), "LIST shows dot files: %r" % names)
    lsub = ok(imap.lsub(), "LSUB")
    check(any(b"work/2026" in l for l in lsub), "LSUB: %r" % lsub)
    status = ok(imap.status("work/2026", "(MESSAGES UIDNEXT)"), "STATUS")
    check(b"MESSAGES 1" in status[0] and b"UIDNEXT 2" in status[0], "STATUS: %r" % status)
    imap.logout()

    pop = poplib.POP3("127.0.0.1", a.pop3_port)
    pop.user(a.user)
    pop.pass_(a.password)
    count, size = pop.stat()
    check(count == 3, "POP3 STAT: %d" % count)
    listing = pop.list()[1]
    uidls = pop.uidl()[1]
    check(len(uidls) == 3, "UIDL: %r" % uidls)
    lines = pop.retr(3)[1]
    check(lines == [b"Subject: appended", b"", b"From imaplib"], "RETR 3: %r" % lines)
    sizes = [int(l.split()[1]) for l in listing]
    check(sizes[2] == len(b"Subject: appended\r\n\r\nFrom imaplib\r\n"), "LIST sizes: %r" % sizes)
    pop.quit()
    print("mbox session OK")


main()
