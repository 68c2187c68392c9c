#!/usr/bin/env python3
"""SORT and THREAD through Python's imaplib against a running Columba (driven by
crates/columba/tests/sort_thread.rs). Exits non-zero with a message on the first failure.

Covers: the capabilities after login, SORT by date, subject (base subjects), from and size,
REVERSE and several keys, UID SORT, SORT with search criteria, THREAD REFERENCES, REFS and
ORDEREDSUBJECT, UID THREAD, and SORT/THREAD that find nothing.
"""
import imaplib

from imaptest import arguments, check, numbers, ok


def message(n, subject, date, sender, msgid, refs=None, body=b"hello"):
    lines = [
        b"From: " + sender,
        b"To: list@example.org",
        b"Subject: " + subject,
        b"Date: " + date,
        b"Message-ID: <" + msgid + b">",
    ]
    if refs:
        lines.append(b"References: " + refs)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body + b" %d\r\n" % n


MESSAGES = [
    # (subject, sent date, from, message-id, references, body)
    (b"Release plans", b"Mon, 06 Mar 2023 09:00:00 +0000", b"Carol <carol@example.com>",
     b"r1@example.com", None, b"first"),
    (b"Re: Release plans", b"Mon, 06 Mar 2023 11:00:00 +0100", b"alice@example.com",
     b"r2@example.com", b"<r1@example.com>", b"a longer reply, so that this one is the biggest"),
    (b"=?UTF-8?Q?Caf=C3=A9?= order", b"Sun, 05 Mar 2023 08:00:00 +0000", b"Bob <bob@example.com>",
     b"c1@example.com", None, b"x"),
    (b"[team] Re: Release plans", b"Tue, 07 Mar 2023 09:00:00 +0000", b"dave@example.com",
     b"r3@example.com", b"<r1@example.com> <r2@example.com>", b"third"),
    (b"Fwd: caf\xc3\xa9 order", b"Wed, 08 Mar 2023 09:00:00 +0000", b"erin@example.com",
     b"c2@example.com", b"<missing@example.com>", b"fwd"),
]


def main():
    args = arguments()

    m = imaplib.IMAP4("127.0.0.1", args.port)
    ok(m.login(args.user, args.password), "LOGIN")
    caps = ok(m.capability(), "CAPABILITY")[0].decode().split()
    for cap in ["SORT", "SORT=DISPLAY", "THREAD=REFERENCES", "THREAD=REFS",
                "THREAD=ORDEREDSUBJECT", "ESORT"]:
        check(cap in caps, "capability %s in %r" % (cap, caps))
    for i, (subject, date, sender, msgid, refs, body) in enumerate(MESSAGES, 1):
        ok(m.append("INBOX", None, None, message(i, subject, date, sender, msgid, refs, body)),
           "APPEND %d" % i)
    ok(m.select("INBOX"), "SELECT")

    # Sent dates: 3 (5 Mar 08:00), 1 (6 Mar 09:00), 2 (6 Mar 11:00 +0100, 10:00 UTC), 4, 5.
    got = numbers(ok(m.sort("(DATE)", "UTF-8", "ALL"), "SORT DATE"))
    check(got == [3, 1, 2, 4, 5], "SORT (DATE): %r" % got)
    got = numbers(ok(m.sort("(REVERSE DATE)", "UTF-8", "ALL"), "SORT REVERSE DATE"))
    check(got == [5, 4, 2, 1, 3], "SORT (REVERSE DATE): %r" % got)
    # Base subjects: CAFÉ ORDER (3, 5) before RELEASE PLANS (1, 2, 4); ties by date.
    got = numbers(ok(m.sort("(SUBJECT DATE)", "UTF-8", "ALL"), "SORT SUBJECT"))
    check(got == [3, 5, 1, 2, 4], "SORT (SUBJECT DATE): %r" % got)
    got = numbers(ok(m.sort("(FROM)", "US-ASCII", "ALL"), "SORT FROM"))
    check(got == [2, 3, 1, 4, 5], "SORT (FROM): %r" % got)
    got = numbers(ok(m.sort("(DISPLAYFROM)", "UTF-8", "ALL"), "SORT DISPLAYFROM"))
    check(got == [2, 3, 1, 4, 5], "SORT (DISPLAYFROM): %r" % got)
    got = numbers(ok(m.sort("(REVERSE SIZE)", "UTF-8", "ALL"), "SORT SIZE"))
    check(got[0] == 2, "SORT (REVERSE SIZE) starts with the biggest: %r" % got)
    got = numbers(ok(m.sort("(DATE)", "UTF-8", "SUBJECT", '"release plans"'), "SORT SUBJECT key"))
    check(got == [1, 2, 4], "SORT (DATE) SUBJECT: %r" % got)
    got = numbers(ok(m.sort("(DATE)", "UTF-8", "DELETED"), "SORT nothing"))
    check(got == [], "SORT of nothing: %r" % got)

    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "STORE")
    ok(m.expunge(), "EXPUNGE")
    got = numbers(ok(m.uid("SORT", "(DATE)", "UTF-8", "ALL"), "UID SORT"))
    check(got == [3, 2, 4, 5], "UID SORT (DATE): %r" % got)
    got = numbers(ok(m.sort("(DATE)", "UTF-8", "ALL"), "SORT after EXPUNGE"))
    check(got == [2, 1, 3, 4], "SORT (DATE) after EXPUNGE: %r" % got)

    # THREAD, by sequence number (UID 1 is gone: 1=UID 2, 2=UID 3, 3=UID 4, 4=UID 5).
    # REFERENCES: 1's parent is gone, so 1 heads its thread, 3 under it; 4 (a forward of the
    # café order, its own parent missing) gathers under 2 by subject. REFS leaves 4 alone and
    # orders the threads by their newest message.
    got = ok(m.thread("REFERENCES", "UTF-8", "ALL"), "THREAD REFERENCES")[0]
    check(got == b"(2 4)(1 3)", "THREAD REFERENCES: %r" % got)
    got = ok(m.thread("REFS", "UTF-8", "ALL"), "THREAD REFS")[0]
    check(got == b"(2)(1 3)(4)", "THREAD REFS: %r" % got)
    got = ok(m.thread("ORDEREDSUBJECT", "UTF-8", "ALL"), "THREAD ORDEREDSUBJECT")[0]
    check(got == b"(2 4)(1 3)", "THREAD ORDEREDSUBJECT: %r" % got)
    got = ok(m.uid("THREAD", "REFERENCES", "UTF-8", "ALL"), "UID THREAD")[0]
    check(got == b"(3 5)(2 4)", "UID THREAD REFERENCES: %r" % got)
    got = ok(m.thread("REFERENCES", "UTF-8", "DELETED"), "THREAD nothing")
    check(got in ([None], [b""]), "THREAD of nothing: %r" % got)

    try:
        m.thread("NOSUCH", "UTF-8", "ALL")
        check(False, "THREAD NOSUCH accepted")
    except imaplib.IMAP4.error:
        pass
    m.logout()
    print("imaplib sort/thread OK")


if __name__ == "__main__":
    main()
