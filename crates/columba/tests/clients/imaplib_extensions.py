#!/usr/bin/env python3
"""IMAP extensions through Python's imaplib against a running Columba (driven by
crates/columba/tests/extensions_imaplib.rs). Exits non-zero with a message on the first failure.

Covers what imaplib can send: SEARCHRES (RFC 5182: SEARCH RETURN (SAVE), then FETCH, STORE,
COPY and UID SEARCH on `$`), WITHIN (RFC 5032), APPENDLIMIT (RFC 7889: capability and STATUS),
CREATE-SPECIAL-USE (RFC 6154 3), SAVEDATE (RFC 8514), ESEARCH (RFC 4731) and MOVE (RFC 6851).
"""
import imaplib
import re

from imaptest import arguments, check, numbers, ok


def main():
    args = arguments()

    m = imaplib.IMAP4("127.0.0.1", args.port)
    ok(m.login(args.user, args.password), "LOGIN")
    caps = ok(m.capability(), "CAPABILITY")[0].decode().split()
    for cap in ["MULTIAPPEND", "SEARCHRES", "WITHIN", "CREATE-SPECIAL-USE", "SPECIAL-USE",
                "SAVEDATE"]:
        check(cap in caps, "capability %s in %r" % (cap, caps))
    limits = [c for c in caps if c.startswith("APPENDLIMIT=")]
    check(len(limits) == 1, "one APPENDLIMIT=n in %r" % caps)
    limit = int(limits[0].split("=", 1)[1])
    check(limit > 0, "APPENDLIMIT %d" % limit)

    # APPENDLIMIT through STATUS agrees with the capability.
    data = ok(m.status("INBOX", "(APPENDLIMIT)"), "STATUS APPENDLIMIT")
    check(re.search(rb"APPENDLIMIT (\d+)", data[0]).group(1) == str(limit).encode(),
          "STATUS APPENDLIMIT %r" % data)

    # CREATE-SPECIAL-USE: the attribute shows in LIST; an unknown one is refused.
    ok(m.create("Spam (USE (\\Junk))"), "CREATE Spam (USE (\\Junk))")
    listed = ok(m.list('""', "Spam"), "LIST Spam")
    check(b"\\Junk" in listed[0], "LIST Spam shows \\Junk: %r" % listed)
    typ, data = m.create("Nope (USE (\\Bogus))")
    check(typ == "NO" and b"[USEATTR]" in data[0], "CREATE with \\Bogus: %s %r" % (typ, data))
    listed = ok(m.list('""', "Nope"), "LIST Nope")
    check(listed == [None], "Nope was not created: %r" % listed)

    # One old message (2001) and three new ones, two of them flagged.
    old = imaplib.Time2Internaldate((2001, 1, 1, 0, 0, 0, 0, 1, -1))
    ok(m.append("INBOX", None, old, b"Subject: old\r\n\r\nold\r\n"), "APPEND old")
    for i, flags in enumerate(["(\\Flagged)", None, "(\\Flagged)"], 1):
        ok(m.append("INBOX", flags, None, b"Subject: new %d\r\n\r\nnew\r\n" % i), "APPEND new")
    ok(m.select("INBOX"), "SELECT")

    # SAVEDATE: the 2001 message was saved today.
    data = ok(m.fetch("1", "(INTERNALDATE SAVEDATE)"), "FETCH SAVEDATE")
    check(b'INTERNALDATE "01-Jan-2001' in data[0] and b"SAVEDATE \"" in data[0]
          and b"-2001 " not in data[0].split(b"SAVEDATE")[1], "FETCH SAVEDATE: %r" % data)
    got = numbers(ok(m.search(None, "SAVEDBEFORE", "1-Jan-2002"), "SEARCH SAVEDBEFORE"))
    check(got == [], "SEARCH SAVEDBEFORE 1-Jan-2002: %r" % got)
    got = numbers(ok(m.search(None, "SAVEDATESUPPORTED"), "SEARCH SAVEDATESUPPORTED"))
    check(got == [1, 2, 3, 4], "SEARCH SAVEDATESUPPORTED: %r" % got)

    # WITHIN.
    got = numbers(ok(m.search(None, "OLDER", "86400"), "SEARCH OLDER"))
    check(got == [1], "SEARCH OLDER 86400: %r" % got)
    got = numbers(ok(m.search(None, "YOUNGER", "86400"), "SEARCH YOUNGER"))
    check(got == [2, 3, 4], "SEARCH YOUNGER 86400: %r" % got)

    # SEARCHRES: SAVE returns nothing, `$` then names the saved messages.
    typ, data = m.search(None, "RETURN", "(SAVE)", "FLAGGED")
    check(typ == "OK" and data == [None], "SEARCH RETURN (SAVE): %s %r" % (typ, data))
    data = ok(m.fetch("$", "(UID)"), "FETCH $")
    uids = sorted(int(re.search(rb"UID (\d+)", d).group(1)) for d in data)
    check(uids == [2, 4], "FETCH $ (UID): %r" % data)
    got = numbers(ok(m.uid("SEARCH", "UID", "$", "NOT", "UID", "2"), "UID SEARCH UID $"))
    check(got == [4], "UID SEARCH UID $ NOT UID 2: %r" % got)
    ok(m.copy("$", "Spam"), "COPY $ Spam")
    ok(m.store("$", "+FLAGS.SILENT", "(\\Deleted)"), "STORE $")
    ok(m.expunge(), "EXPUNGE")
    # The expunged messages left `$`.
    typ, data = m.fetch("$", "(UID)")
    check(typ == "OK" and data == [None], "FETCH $ after EXPUNGE: %s %r" % (typ, data))
    data = ok(m.status("Spam", "(MESSAGES)"), "STATUS Spam")
    check(b"MESSAGES 2" in data[0], "two messages copied into Spam: %r" % data)

    # ESEARCH (RFC 4731): RETURN options answered in one untagged ESEARCH, which imaplib
    # keeps aside from its SEARCH data. INBOX now holds UIDs 1 and 3.
    typ, data = m.uid("SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    check(typ == "OK", "UID SEARCH RETURN: %s %r" % (typ, data))
    typ, esearch = m.response("ESEARCH")
    check(esearch and esearch[0] is not None, "an ESEARCH response: %r" % (esearch,))
    line = esearch[-1]
    for part in (rb"UID", rb"MIN 1", rb"MAX 3", rb"COUNT 2", rb"ALL 1,3"):
        check(part in line, "ESEARCH %r has %r" % (line, part))
    check(re.search(rb'\(TAG "[^"]+"\)', line), "ESEARCH correlates its tag: %r" % line)

    # MOVE (RFC 6851): COPYUID for the moved message, gone from INBOX, there in Spam.
    typ, data = m.uid("MOVE", "3", "Spam")
    check(typ == "OK", "UID MOVE: %s %r" % (typ, data))
    typ, copyuid = m.response("COPYUID")
    # imaplib keeps every COPYUID of the session; the MOVE's is the last.
    check(copyuid and copyuid[-1] and copyuid[-1].split()[1:] == [b"3", b"3"],
          "COPYUID names source UID 3 and Spam's UID 3: %r" % (copyuid,))
    got = numbers(ok(m.uid("SEARCH", "ALL"), "UID SEARCH ALL after MOVE"))
    check(got == [1], "INBOX after MOVE: %r" % got)
    data = ok(m.status("Spam", "(MESSAGES)"), "STATUS Spam after MOVE")
    check(b"MESSAGES 3" in data[0], "Spam got the moved message: %r" % data)

    m.logout()
    print("imaplib extensions OK")


if __name__ == "__main__":
    main()
