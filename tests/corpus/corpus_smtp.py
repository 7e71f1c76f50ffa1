#!/usr/bin/python3
"""The SpamAssassin corpus over SMTP, and the opened copies checked against what was sent
(tests/corpus/corpus_lib.sh: the gateway corpus tests).

usage:
  corpus_smtp.py send --corpus DIR --stride N --server HOST:PORT --from ADDR --to ADDR --out LIST
  corpus_smtp.py check --corpus DIR --sent LIST --opened DIR [--received-by HOST]

send: every Nth message of DIR (the *.txt files, sorted by path) in one SMTP session, as an MTA
hands it over: line ends made CRLF (bare CR and bare LF too), a final CRLF added when missing;
smtplib dot-stuffs. LIST gets one line per message the server accepted, tab-separated: the
SHA-256 of those wire bytes, the path under DIR, the server's reply to the final dot. A refused
message is reported on stderr and the session opened again; exit 1 if any was refused.

check: each opened message (a file of the --opened directory) is compared with the wire bytes of
what was sent. Without --received-by, as a multiset of SHA-256 sums (the direct test: no hop adds
anything); a message sent and not found is named.
With --received-by HOST (a Postfix in front, named HOST in its Received: line): the first header
field of the opened message must be a Received: field saying "by HOST (Postfix) with ESMTP id
QID" (continuation lines included), where QID is the queue id of Postfix's "queued as QID" reply
to that very message; that field alone is removed and the rest must be byte-identical to the
sent message, except for what Postfix's smtpd does to every message and no setting turns off
(smtpd.c, smtpd_proto's DATA loop, "Deal with UNIX-style From_ lines at the start of message
content because sendmail permits it"):
  - each line at the very start of the content that is "From " after any ">" (an mbox From_
    line, which most corpus files begin with) is written as a header: "X-Mailbox-Line: " and
    the line;
  - when the first line after them begins with a space or a tab, an empty line is put before it
    (so that it is not read as a continuation of Postfix's own Received: header).
Such messages must be byte-identical to the sent message with exactly that change; they are
counted and listed by name. Any other difference fails, reported with its first differing line.
Exit 0 when every sent message was opened once and matched, 1 otherwise.
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


def first_field(msg):
    """The first header field of msg, with its continuation lines: (field, rest)."""
    end = msg.find(b"\r\n")
    while end >= 0 and msg[end + 2:end + 3] in (b" ", b"\t"):
        end = msg.find(b"\r\n", end + 2)
    if end < 0:
        return msg, b""
    return msg[:end + 2], msg[end + 2:]


def first_diff(want, got):
    """A short description of the first line where got differs from want."""
    wl, gl = want.split(b"\r\n"), got.split(b"\r\n")
    for i in range(max(len(wl), len(gl))):
        w = wl[i] if i < len(wl) else None
        g = gl[i] if i < len(gl) else None
        if w != g:
            col = 0
            if w is not None and g is not None:
                while col < min(len(w), len(g)) and w[col] == g[col]:
                    col += 1
            lo = max(0, col - 30)

            def show(x):
                if x is None:
                    return "(none)"
                return "%s%r%s (%d octets)" % ("..." if lo else "", x[lo:col + 50],
                                               "..." if len(x) > col + 50 else "", len(x))
            return "line %d, octet %d: sent %s, opened %s" % (i + 1, col + 1, show(w), show(g))
    return "same lines, different line ends"


def postfix_smtpd(wire):
    """wire as Postfix's smtpd queues it (see check above), and what it changed."""
    changes, out, pos = [], b"", 0
    while wire[pos:].lstrip(b">").startswith(b"From "):
        end = wire.index(b"\r\n", pos) + 2
        out += b"X-Mailbox-Line: " + wire[pos:end]
        pos = end
    if pos:
        changes.append("X-Mailbox-Line")
    if wire[pos:pos + 1] in (b" ", b"\t"):
        out += b"\r\n"
        changes.append("empty line before leading white space")
    return out + wire[pos:], changes


SMTPD_WHY = {
    "X-Mailbox-Line": "Postfix's smtpd turns the From_ line(s) at the start of the content into "
                      "X-Mailbox-Line: headers (hard-coded, for sendmail compatibility)",
    "empty line before leading white space": "Postfix's smtpd puts an empty line before content "
                      "that begins with white space (hard-coded: else it would continue its "
                      "Received: header)",
}


def check(a):
    sent = []
    for line in open(a.sent):
        digest, rel, reply = line.rstrip("\n").split("\t", 2)
        sent.append((digest, rel, reply))
    opened = sorted(os.listdir(a.opened))
    bad = 0
    if not a.received_by:
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

    by_qid = {}
    for d, rel, reply in sent:
        m = re.search(r"queued as ([0-9A-Za-z]+)", reply)
        if not m:
            print("no queue id in Postfix's reply for %s: %s" % (rel, reply))
            bad += 1
            continue
        by_qid[m.group(1)] = rel
    rcvd = re.compile(rb"Received: .*\sby " + re.escape(a.received_by.encode()) +
                      rb" \(Postfix\) with E?SMTPS?A? id ([0-9A-Za-z]+)[;\s]", re.S)
    seen, exact, differ, changed = set(), 0, [], {}
    for f in opened:
        got = open(os.path.join(a.opened, f), "rb").read()
        field, rest = first_field(got)
        m = rcvd.match(field)
        if not m or m.group(1).decode() not in by_qid:
            print("%s: the first header field is not the test Postfix's Received: of a message "
                  "sent: %r" % (f, field[:200]))
            bad += 1
            continue
        rel = by_qid[m.group(1).decode()]
        if rel in seen:
            print("%s: a second copy of %s" % (f, rel))
            bad += 1
            continue
        seen.add(rel)
        want, changes = postfix_smtpd(wire_of(a.corpus, rel))
        if rest != want:
            differ.append((rel, first_diff(want, rest)))
            bad += 1
        elif changes:
            for c in changes:
                changed.setdefault(c, []).append(rel)
        else:
            exact += 1
    for _, rel, _ in sent:
        if rel not in seen:
            print("sent but not opened: %s" % rel)
            bad += 1
    for rel, why in differ:
        print("DIFFERS: %s: %s (lines of the sent message as Postfix's smtpd queues it)" %
              (rel, why))
    for c, rels in sorted(changed.items()):
        print("%d messages changed as expected: %s:" % (len(rels), SMTPD_WHY[c]))
        for i in range(0, len(rels), 3):
            print("  " + " ".join(sorted(rels)[i:i + 3]))
    n_changed = len({r for rels in changed.values() for r in rels})
    print("%d sent, %d opened: %d byte-exact after Postfix's Received: line, %d byte-exact but "
          "for what Postfix's smtpd always changes, %d differ, %d failures" %
          (len(sent), len(opened), exact, n_changed, len(differ), bad))
    return 1 if bad else 0


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
    c.add_argument("--received-by")
    a = p.parse_args()
    if a.cmd == "send":
        if a.stride < 1:
            p.error("--stride must be at least 1")
        return send(a)
    return check(a)


if __name__ == "__main__":
    sys.exit(main())
