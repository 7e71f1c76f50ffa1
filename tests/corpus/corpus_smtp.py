#!/usr/bin/python3
"""The SpamAssassin corpus over SMTP, and the opened copies checked against what was sent
(tests/corpus/corpus_lib.sh: the gateway corpus tests).

usage:
  corpus_smtp.py send --corpus DIR --stride N --server HOST:PORT --from ADDR --to ADDR --out LIST
  corpus_smtp.py check --corpus DIR --sent LIST --opened DIR

send: every Nth message of DIR (the *.txt files, sorted by path) in one SMTP session, as an MTA
hands it over: line ends made CRLF (bare CR and bare LF too), a final CRLF added when missing;
smtplib dot-stuffs. LIST gets one line per message the server accepted, tab-separated: the
SHA-256 of those wire bytes, the path under DIR, the server's reply to the final dot. A refused
message is reported on stderr and the session opened again; exit 1 if any was refused.

check: the opened messages (the files of the --opened directory) must be, as a multiset, byte
for byte the wire bytes of the messages sent (their SHA-256 sums); a message sent and not found
is named. Exit 0 when they are, 1 otherwise.
"""
import argparse
import hashlib
import os
import re
import smtplib
import sys


def corpus_files(root, stride):
    files = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, fs in os.walk(root) for f in fs if f.endswith(".txt"))
    return files[::stride]


def wire_of(root, rel):
    data = open(os.path.join(root, rel), "rb").read()
    wire = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    return wire


def session(host, port):
    s = smtplib.SMTP(host, port, timeout=300)
    s.ehlo("mta.alpha.example")
    return s


def send(a):
    host, _, port = a.server.rpartition(":")
    files = corpus_files(a.corpus, a.stride)
    s = session(host, int(port))
    lines, refused = [], 0
    for rel in files:
        wire = wire_of(a.corpus, rel)
        try:
            code, msg = s.mail(a.sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, msg, a.sender)
            code, msg = s.rcpt(a.rcpt)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({a.rcpt: (code, msg)})
            code, msg = s.data(wire)
            if code != 250:
                raise smtplib.SMTPDataError(code, msg)
        except smtplib.SMTPException as e:
            refused += 1
            print("refused %s: %s" % (rel, e), file=sys.stderr)
            try:
                s.close()
            finally:
                s = session(host, int(port))
            continue
        reply = msg.decode("utf-8", "replace").replace("\t", " ").replace("\n", " ")
        lines.append("%s\t%s\t%s\n" % (hashlib.sha256(wire).hexdigest(), rel, reply))
    s.quit()
    with open(a.out, "w") as f:
        f.write("".join(lines))
    print("sent %d of %d messages, %d refused" % (len(lines), len(files), refused))
    return 1 if refused or not lines else 0


def check(a):
    sent = []
    for line in open(a.sent):
        digest, rel, reply = line.rstrip("\n").split("\t", 2)
        sent.append((digest, rel, reply))
    opened = sorted(os.listdir(a.opened))
    want = sorted(d for d, _, _ in sent)
    got = sorted(hashlib.sha256(open(os.path.join(a.opened, f), "rb").read()).hexdigest()
                 for f in opened)
    if want != got:
        left = set(want) - set(got)
        for d, rel, _ in sent:
            if d in left:
                print("not opened byte for byte: %s" % rel)
        print("%d sent, %d opened, %d sums unmatched" % (len(want), len(got), len(left)))
        return 1
    print("%d sent, %d opened, all byte for byte" % (len(want), len(got)))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--corpus", required=True)
    s.add_argument("--stride", type=int, required=True)
    s.add_argument("--server", required=True)
    s.add_argument("--from", dest="sender", required=True)
    s.add_argument("--to", dest="rcpt", required=True)
    s.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--corpus", required=True)
    c.add_argument("--sent", required=True)
    c.add_argument("--opened", required=True)
    a = p.parse_args()
    if a.cmd == "send":
        if a.stride < 1:
            p.error("--stride must be at least 1")
        return send(a)
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
