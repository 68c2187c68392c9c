#!/usr/bin/env python3
"""Python's smtplib.LMTP as an independent LMTP client (RFC 2033) of a Columba server, and
imaplib reading what it delivered.

One transaction to two users: smtplib's LMTP.data() returns the first recipient's reply, the
second comes with getreply() (RFC 2033 4.2: one reply per recipient). Then each user logs in
over IMAP and the stored message must be the trace headers Columba adds followed by the sent
message, byte for byte.
"""
import argparse
import imaplib
import re
import smtplib
import sys

p = argparse.ArgumentParser()
p.add_argument("--lmtp-port", type=int, required=True)
p.add_argument("--imap-port", type=int, required=True)
p.add_argument("--users", nargs="+", required=True, help="name:password ...")
args = p.parse_args()

users = [u.split(":", 1) for u in args.users]
message = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: several\r\n"
    b"Subject: over LMTP\r\n"
    b"Message-ID: <lmtp-test@example.org>\r\n"
    b"\r\n"
    b"First line.\r\n"
    b".A line that starts with a dot.\r\n"
    b"\xc3\xa9t\xc3\xa9 in 8 bits\r\n"
)


def fail(why):
    print("FAIL:", why)
    sys.exit(1)


lmtp = smtplib.LMTP("127.0.0.1", args.lmtp_port)
code, caps = lmtp.ehlo("client.example.org")  # smtplib sends LHLO for LMTP
if code != 250 or not lmtp.has_extn("pipelining") or not lmtp.has_extn("size"):
    fail(f"LHLO: {code} {caps!r}")
code, _ = lmtp.mail("sender@example.org", ["BODY=8BITMIME", f"SIZE={len(message)}"])
if code != 250:
    fail(f"MAIL: {code}")
for name, _ in users:
    code, reply = lmtp.rcpt(f"{name}@example.com")
    if code != 250:
        fail(f"RCPT {name}: {code} {reply!r}")
code, reply = lmtp.rcpt("nobody-here@example.com")
if code != 550 or b"5.1.1" not in reply:
    fail(f"RCPT of an unknown user: {code} {reply!r}")
replies = [lmtp.data(message)]
for _ in users[1:]:
    replies.append(lmtp.getreply())
for (name, _), (code, reply) in zip(users, replies):
    if code != 250 or f"<{name}@example.com>".encode() not in reply:
        fail(f"DATA reply for {name}: {code} {reply!r}")
lmtp.quit()

trace = re.compile(
    rb"\AReturn-Path: <sender@example\.org>\r\n"
    rb"Received: from client\.example\.org \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby [^\r\n]+ with LMTP\r\n"
    rb"\tid [^\r\n]+\r\n"
    rb"\t\(envelope-from <sender@example\.org>\); [^\r\n]+ \+0000\r\n"
)
for name, password in users:
    imap = imaplib.IMAP4("127.0.0.1", args.imap_port)
    imap.login(name, password)
    typ, data = imap.select("INBOX")
    if typ != "OK" or data[0] != b"1":
        fail(f"{name}: SELECT {typ} {data!r}")
    typ, data = imap.fetch("1", "(BODY.PEEK[])")
    stored = data[0][1]
    m = trace.match(stored)
    if not m:
        fail(f"{name}: trace headers: {stored[:400]!r}")
    if stored[m.end():] != message:
        fail(f"{name}: body differs: {stored[m.end():]!r}")
    imap.logout()
print("lmtp smtplib OK")
