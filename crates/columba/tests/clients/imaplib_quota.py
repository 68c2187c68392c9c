#!/usr/bin/env python3
"""QUOTA (RFC 9208) through Python's imaplib against a running Columba whose user has
quota_rule limits in the passwd-file (driven by crates/columba/tests/extensions_imaplib.rs):
GETQUOTAROOT and GETQUOTA as imaplib parses them, and APPEND refused with OVERQUOTA.
Exits non-zero with a message on the first failure.
"""
import imaplib

from imaptest import arguments, check, ok


def main():
    args = arguments()
    m = imaplib.IMAP4("127.0.0.1", args.port)
    ok(m.login(args.user, args.password), "LOGIN")
    caps = ok(m.capability(), "CAPABILITY")[0].decode().split()
    for cap in ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"]:
        check(cap in caps, "capability %s in %r" % (cap, caps))

    typ, data = m.getquotaroot("INBOX")
    check(typ == "OK", "GETQUOTAROOT: %s %r" % (typ, data))
    roots, quotas = data
    check(roots == [b'"INBOX" "User quota"'], "QUOTAROOT: %r" % roots)
    check(quotas == [b'"User quota" (STORAGE 0 1 MESSAGE 0 2)'], "QUOTA: %r" % quotas)

    ok(m.append("INBOX", None, None, b"Subject: one\r\n\r\nfirst\r\n"), "APPEND 1")
    ok(m.append("INBOX", None, None, b"Subject: two\r\n\r\nsecond\r\n"), "APPEND 2")
    try:
        typ, data = m.append("INBOX", None, None, b"Subject: three\r\n\r\nthird\r\n")
    except imaplib.IMAP4.error as e:
        typ, data = "NO", [str(e).encode()]
    check(typ == "NO" and b"[OVERQUOTA]" in data[0], "APPEND 3: %s %r" % (typ, data))

    typ, data = m.getquota('"User quota"')
    check(typ == "OK" and data == [b'"User quota" (STORAGE 1 1 MESSAGE 2 2)'],
          "GETQUOTA: %s %r" % (typ, data))
    m.logout()
    print("imaplib quota OK")


if __name__ == "__main__":
    main()
