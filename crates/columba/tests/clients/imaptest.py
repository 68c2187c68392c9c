"""What the imaplib client scripts of crates/columba/tests share: failing with a message, and
checking a command's status."""
import argparse
import sys


def check(cond, what):
    if not cond:
        print("FAIL: " + what, file=sys.stderr)
        sys.exit(1)


def ok(result, what):
    typ, data = result
    check(typ == "OK", "%s: %s %r" % (what, typ, data))
    return data


def numbers(data):
    """The numbers of a SEARCH or SORT response."""
    return [int(x) for x in data[0].split()] if data and data[0] else []


def arguments():
    """--port, --user and --password, as the Rust tests pass them."""
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    return p.parse_args()
