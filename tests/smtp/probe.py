#!/usr/bin/python3
"""ECOSYSTEM §6.2 SMTP/LMTP cases against a live listener (python3 stdlib only).

usage: probe.py --port PORT [--host H] [--lmtp] [--tls] [--rcpt ADDR] [--rcpt-p20 ADDR]
                [--rcpt-rst ADDR] [--from ADDR] [--max-rcpts N] [--bare-lf normalize|reject]
                [--timeout-cmd S] [--timeout-data S] [--timeout-tls S] [--save DIR] [--canary TOKEN]
                [--mode whole|byte|both] CASE... (or "all")

Every case runs on fresh connections, twice: with whole writes, and with one byte per send()
(TCP_NODELAY). Each checks the replies it expects (codes, enhanced codes, order) and fails with
"FAIL <case>/<mode>: <what>"; the exit status is 1 when any case failed. The expectations are
the ones docs/smtp.md documents for dimed's listeners (one session machine,
gateway/src/smtp_session.c).

--save DIR: every message the server accepted (250 after DATA) for --rcpt is written to DIR as
the bytes the server must store (dot-unstuffed, CRLF lines, as docs/smtp.md "DATA" says), one
file per message, so the caller can compare them with what was delivered.
--canary TOKEN: R9 puts TOKEN in a subject, a body, an envelope address and a command argument;
the caller then greps the server's log for it.
"""
import argparse
import os
import socket
import ssl
import sys
import threading
import time

CASES = ["P1", "P2", "P3", "P4", "P6", "P7", "P8", "P9", "P10", "P11", "P12", "P13", "P14",
         "P16", "P17", "P18", "P19", "P20", "R9"]
NO_LMTP = {"P11", "P13", "P18"}  # STARTTLS is not offered on LMTP (P12 checks the 454 there)
WAIT = 30.0  # seconds any expected reply may take (a loaded machine, a pool job)


class Fail(Exception):
    pass


class Conn:
    """One client connection: writes whole or one byte per send(), reads SMTP replies."""

    def __init__(self, args, mode):
        self.args = args
        self.mode = mode
        self.sock = socket.create_connection((args.host, args.port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.writer = None
        self.werr = None

    def close(self):
        self.join()
        try:
            self.sock.close()
        except OSError:
            pass

    def _write(self, data):
        """data: bytes, or a list of chunks (a big stream built once, sent without copies)."""
        for chunk in (data if isinstance(data, list) else [data]):
            if self.mode == "whole":
                self.sock.sendall(chunk)
            else:
                for i in range(len(chunk)):
                    self.sock.sendall(chunk[i:i + 1])

    def send(self, data):
        self.join()
        self._write(data)

    def send_async(self, data):
        """Write from a thread while replies are read (a pipelining client must read as it
        writes, RFC 2920 3.5: the server stops reading once its replies are not taken)."""
        self.join()

        def run():
            try:
                self._write(data)
            except OSError as e:
                self.werr = e

        self.writer = threading.Thread(target=run, daemon=True)
        self.writer.start()

    def join(self):
        if self.writer is not None:
            self.writer.join(WAIT * 4)
            if self.writer.is_alive():
                raise Fail("the writer did not finish (the server stopped reading)")
            self.writer = None
        if self.werr is not None:
            e, self.werr = self.werr, None
            raise Fail("write failed: %s" % e)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        b = self.sock.recv(65536)
        if not b:
            raise EOFError()
        self.buf += b

    def line(self, deadline):
        while b"\n" not in self.buf:
            self._fill(deadline)
        i = self.buf.index(b"\n")
        ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        if not ln.endswith(b"\r\n"):
            raise Fail("reply line without CRLF: %r" % ln)
        return ln[:-2].decode("latin-1")

    def reply(self, what, wait=WAIT):
        """One reply: (code, [text lines]); multi-line replies joined (RFC 5321 4.2.1)."""
        deadline = time.monotonic() + wait
        lines = []
        try:
            while True:
                ln = self.line(deadline)
                if len(ln) < 3 or not ln[:3].isdigit() or (len(ln) > 3 and ln[3] not in " -"):
                    raise Fail("%s: malformed reply line %r" % (what, ln))
                if lines and ln[:3] != lines[0][:3]:
                    raise Fail("%s: multi-line reply changes code: %r" % (what, lines + [ln]))
                lines.append(ln)
                if len(ln) == 3 or ln[3] == " ":
                    return int(ln[:3]), lines
        except socket.timeout:
            raise Fail("%s: no reply within %.0f s (got %r)" % (what, wait, lines + [self.buf]))
        except EOFError:
            raise Fail("%s: connection closed instead of a reply (got %r)" % (what, lines))
        except ConnectionResetError:
            raise Fail("%s: connection reset instead of a reply" % what)

    def expect(self, what, code, enh=None, text=None):
        c, lines = self.reply(what)
        ok = c == code if isinstance(code, int) else c in code
        if ok and enh is not None:
            ok = lines[-1][4:].startswith(enh + " ") or lines[-1][4:] == enh
        if ok and text is not None:
            ok = text in "\n".join(lines)
        if not ok:
            raise Fail("%s: got %r, want %s%s%s" % (what, lines, code,
                                                      " " + enh if enh else "",
                                                      " ~" + text if text else ""))
        return lines

    def closed(self, what, wait=WAIT):
        """The server closes: EOF (or a reset) with no further reply."""
        deadline = time.monotonic() + wait
        try:
            while True:
                self._fill(deadline)
                raise Fail("%s: got %r, want the connection closed" % (what, self.buf))
        except socket.timeout:
            raise Fail("%s: still open after %.0f s" % (what, wait))
        except (EOFError, ConnectionResetError):
            return

    def quiet(self, what, secs):
        """Nothing arrives for secs (a reply here would answer a command nobody may answer)."""
        deadline = time.monotonic() + secs
        try:
            while True:
                self._fill(deadline)
                raise Fail("%s: got %r, want no reply" % (what, self.buf))
        except socket.timeout:
            return
        except (EOFError, ConnectionResetError):
            raise Fail("%s: connection closed, want it open and quiet" % what)


class Probe:
    def __init__(self, args):
        self.args = args
        self.helo = b"LHLO" if args.lmtp else b"EHLO"
        self.saved = 0
        self.size_limit = None

    # ---- helpers ----

    def conn(self, mode):
        c = Conn(self.args, mode)
        c.expect("banner", 220, text="LMTP" if self.args.lmtp else "ESMTP")
        return c

    def greet(self, c, name=b"probe.example"):
        c.send(self.helo + b" " + name + b"\r\n")
        lines = c.expect("greeting", 250)
        for ln in lines:
            if ln[4:].startswith("SIZE "):
                self.size_limit = int(ln[9:])
        return lines

    def envelope(self, c, rcpt=None, sender=None):
        sender = sender or self.args.sender
        rcpt = rcpt or self.args.rcpt
        c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (sender.encode(), rcpt.encode()))
        c.expect("MAIL", 250, "2.1.0")
        c.expect("RCPT", 250, "2.1.5")
        c.expect("DATA", 354)

    def data_done(self, c, what, expect_stored, name, mode, bare=False):
        """After the real end of DATA: exactly one 250 for the message, then HELP's 214 (a
        second reply before the 214 means bytes inside DATA were run as commands). bare: the
        message holds a bare CR or LF, which --bare-lf reject refuses (550 5.5.2, not stored)."""
        c.send(b"HELP\r\n")
        if bare and self.args.bare_lf == "reject":
            c.expect(what + ": the DATA reply (bare line ends refused)", 550, "5.5.2")
        else:
            c.expect(what + ": the DATA reply", 250, "2.0.0")
            self.save(expect_stored, name, mode)
        c.expect(what + ": the next reply is HELP's (nothing inside DATA was a command)", 214)

    def save(self, data, name, mode):
        if self.args.save:
            proto = "lmtp" if self.args.lmtp else "smtp"
            fn = "%s-%s-%s.eml" % (proto, name, mode)
            with open(os.path.join(self.args.save, fn), "wb") as f:
                f.write(data)
            self.saved += 1

    def headers(self, subject):
        return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s.%d@probe.example>\r\n"
                b"\r\n" % (self.args.sender.encode(), self.args.rcpt.encode(), subject,
                           subject.replace(b" ", b"-"), os.getpid()))

    def still_serving(self, c, what):
        c.send(b"NOOP\r\n")
        c.expect(what + ": NOOP afterwards (still serving)", 250, "2.0.0")

    # ---- cases ----

    def P1(self, mode):
        """Command lines over 512 octets: 500 5.5.6 when their LF comes, the session goes on;
        512 with the CRLF is still a command (RFC 5321 4.5.3.1.4)."""
        c = self.conn(mode)
        self.greet(c)
        c.send(b"NOOP " + b"x" * (512 - 7) + b"\r\n")
        c.expect("512-octet NOOP line", 250, "2.0.0")
        c.send(b"NOOP " + b"x" * (513 - 7) + b"\r\n")
        c.expect("513-octet NOOP line", 500, "5.5.6")
        c.send(self.helo + b" " + b"a" * 5000 + b"\r\n")
        c.expect("5,000-octet greeting", 500, "5.5.6")
        big = 4 << 20 if mode == "whole" else 8 << 10
        c.send_async([b"X" * (1 << 20)] * (big >> 20) + [b"X" * (big & 0xfffff),
                                                         b"\r\nNOOP\r\n"])
        c.expect("%d-octet line" % big, 500, "5.5.6")
        c.expect("NOOP after the long line", 250, "2.0.0")
        c.join()
        self.still_serving(c, "P1")
        c.send(b"QUIT\r\n")
        c.expect("QUIT", 221)
        c.close()

    def P2(self, mode):
        """A DATA line over 998 octets: accepted whole, never truncated or folded (docs/smtp.md
        DATA; dimed does not set reject_long_lines). --save lets the caller check the bytes."""
        c = self.conn(mode)
        self.greet(c)
        self.envelope(c)
        body = self.headers(b"P2 long lines") + b"998:" + b"a" * 994 + b"\r\n" + \
            b"999:" + b"b" * 995 + b"\r\n" + b"5000:" + b"c" * 4995 + b"\r\n" + \
            b"." + b"d" * 3000 + b"\r\nend\r\n"
        c.send(body.replace(b"\r\n.d", b"\r\n..d") + b".\r\n")  # dot-stuffed
        self.data_done(c, "P2", body, "P2", mode)
        c.close()

    def P3(self, mode):
        """Bare LF (normalize, the default): command lines may end in LF alone; in DATA a bare
        LF ends a line (stored as CRLF) and "\\n.\\n" never ends the message. --bare-lf reject:
        such command lines get 500 5.5.2 and are not run, the message 550 5.5.2 at its end."""
        c = self.conn(mode)
        if self.args.bare_lf == "reject":
            for line in [self.helo + b" probe.example\n", b"NOOP\n", b"QUIT\n"]:
                c.send(line)
                c.expect("%r (bare LF refused)" % line, 500, "5.5.2")
            self.greet(c)
            self.envelope(c)
        else:
            c.send(self.helo + b" probe.example\n")
            c.expect("greeting ended by a bare LF", 250)
            c.send(b"NOOP\n")
            c.expect("NOOP ended by a bare LF", 250, "2.0.0")
            c.send(b"MAIL FROM:<%s>\nRCPT TO:<%s>\nDATA\n" % (self.args.sender.encode(),
                                                            self.args.rcpt.encode()))
            c.expect("MAIL (bare LF)", 250, "2.1.0")
            c.expect("RCPT (bare LF)", 250, "2.1.5")
            c.expect("DATA (bare LF)", 354)
        hdr = self.headers(b"P3 bare LF")
        body = hdr.replace(b"\r\n", b"\n") + b"one\n.\nNOOP\nRSET\ntwo\r\n"
        stored = hdr + b"one\r\n\r\nNOOP\r\nRSET\r\ntwo\r\n"
        c.send(body + b".\r\n")
        self.data_done(c, "P3", stored, "P3", mode, bare=True)
        c.close()

    def P4(self, mode):
        """SMTP smuggling (RFC 5321 4.1.1.4): "\\n.\\n", "\\r.\\r", "\\n.\\r\\n" and
        "\\r\\n.\\n" are no end of data; exactly one 250, the fake MAIL never answered, the bytes
        after the fake end stored in the body (a "." line of them becomes an empty line)."""
        smuggled = (b"MAIL FROM:<evil@legacy.test>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                    b"From: <evil@legacy.test>\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
                    % self.args.rcpt.encode())
        variants = [("lf", b"\n.\n", b"\r\n\r\n"), ("cr", b"\r.\r", b"\r.\r"),
                    ("lfcrlf", b"\n.\r\n", b"\r\n\r\n"), ("crlflf", b"\r\n.\n", b"\r\n\r\n")]
        for name, fake, kept in variants:
            c = self.conn(mode)
            self.greet(c)
            self.envelope(c)
            hdr = self.headers(b"P4 " + name.encode())
            c.send(hdr + b"hello" + fake + smuggled + b".\r\n")
            self.data_done(c, "P4 " + name, hdr + b"hello" + kept + smuggled, "P4-" + name, mode,
                           bare=True)
            c.close()

    def P6(self, mode):
        """NUL and octets over 0x7E in commands: 500 (in or before the verb, DEL), 501 (8-bit in
        a known verb's argument), 553 (8-bit path without SMTPUTF8); the session goes on."""
        c = self.conn(mode)
        self.greet(c)
        for line, code, enh in [(b"NOOP\x00\r\n", 500, "5.5.2"), (b"\x00NOOP\r\n", 500, "5.5.2"),
                                (b"NO\x00OP x\r\n", 500, "5.5.2"),
                                (b"NOOP \x00x\r\n", 500, "5.5.2"),
                                (b"NOOP\x7f\r\n", 500, "5.5.2"),
                                (b"N\xc3\xa9OOP\r\n", 500, "5.5.2"),
                                (b"\xffNOOP\r\n", 500, "5.5.2"),
                                (b"NOOP \x80\r\n", 501, "5.5.4"),
                                (b"VRFY \xc3\xa9\r\n", 501, "5.5.4"),
                                (self.helo + b" \xff.example\r\n", 501, "5.5.4"),
                                (b"MAIL FROM:<\xc3\xa9@legacy.test>\r\n", 553, "5.6.7")]:
            c.send(line)
            c.expect("%r" % line, code, enh)
        self.still_serving(c, "P6")
        c.send(b"MAIL FROM:<%s>\r\n" % self.args.sender.encode())
        c.expect("MAIL after the refusals (no transaction was opened)", 250, "2.1.0")
        c.close()

    def P7(self, mode):
        """A bare CR inside a command: one 500 for the whole line, never two commands."""
        c = self.conn(mode)
        self.greet(c)
        for line in [b"RSET\rQUIT\r\n", b"NOOP\rQUIT\n", b"\rQUIT\r\n", b"QUIT\r\r\n"]:
            c.send(line)
            c.expect("%r" % line, 500, "5.5.2")
            c.send(b"HELP\r\n")
            c.expect("HELP after %r (one reply, QUIT not run)" % line, 214)
        c.close()

    def P8(self, mode):
        """Control characters in the verb, a double space after it, an over-long verb: 500."""
        c = self.conn(mode)
        self.greet(c)
        for line in [b"NO\x01OP\r\n", b"NOOP\t\r\n", b"\tNOOP\r\n", b"NO\x1bOP\r\n",
                     b"NOOP  x\r\n", b"MAIL  FROM:<%s>\r\n" % self.args.sender.encode(),
                     b" NOOP\r\n", b"N" * 100 + b"\r\n", b"NOOPNOOP\r\n",
                     b"MAILFROM:<%s>\r\n" % self.args.sender.encode()]:
            c.send(line)
            c.expect("%r" % line, 500, "5.5.2")
        self.still_serving(c, "P8")
        c.close()

    def P9(self, mode):
        """Pipelining: 2,000 commands in one write, every reply in order (dimed sets no command
        cap: docs/smtp.md); a RCPT flood gets max_rcpts 250s, then 452 4.5.3, in order."""
        c = self.conn(mode)
        self.greet(c)
        cycle = [(b"NOOP\r\n", 250), (b"HELP\r\n", 214), (b"VRFY x\r\n", 252),
                 (b"XYZZY\r\n", 500), (b"RSET\r\n", 250)]
        cmds = [cycle[i % len(cycle)] for i in range(2000)]
        c.send_async(b"".join(x[0] for x in cmds))
        for i, (line, code) in enumerate(cmds):
            c.expect("pipelined command %d (%r)" % (i + 1, line), code)
        c.join()
        n = 10000 if mode == "whole" else 1000
        rcpt = b"RCPT TO:<%s>\r\n" % self.args.rcpt.encode()
        c.send_async(b"MAIL FROM:<%s>\r\n" % self.args.sender.encode() + rcpt * n +
                     b"RSET\r\n")
        c.expect("MAIL before the flood", 250, "2.1.0")
        for i in range(n):
            if i < self.args.max_rcpts:
                c.expect("RCPT %d of the flood" % (i + 1), 250, "2.1.5")
            else:
                c.expect("RCPT %d of the flood (past max_rcpts)" % (i + 1), 452, "4.5.3")
        c.expect("RSET after the flood", 250, "2.0.0")
        c.join()
        self.still_serving(c, "P9")
        c.close()

    def P10(self, mode):
        """An early talker: dimed holds the bytes and answers them after the banner (no
        early_talk_reject: docs/smtp.md, the MTA is the only client)."""
        c = Conn(self.args, mode)
        c.send(self.helo + b" early.example\r\nNOOP\r\n")
        c.expect("banner, first", 220)
        c.expect("greeting sent before the banner", 250)
        c.expect("NOOP sent before the banner", 250, "2.0.0")
        c.close()

    @staticmethod
    def handshake(c):
        """TLS over c's socket; raises OSError when it fails. wrap_socket skips the handshake
        of a socket the peer already reset (not "connected"): that is a failure too."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock.settimeout(WAIT)
        c.sock = ctx.wrap_socket(c.sock, server_hostname="probe.example")
        if c.sock.version() is None:
            raise OSError("no handshake: the server closed the connection")

    def tls(self, c, what):
        try:
            self.handshake(c)
        except (ssl.SSLError, OSError) as e:
            raise Fail("%s: TLS handshake failed: %s" % (what, e))
        if c.buf:
            raise Fail("%s: plaintext bytes after the 220: %r" % (what, c.buf))

    def starttls(self, c, what):
        c.send(b"STARTTLS\r\n")
        c.expect(what + ": STARTTLS", 220, "2.0.0")
        self.tls(c, what)

    def P11(self, mode):
        """STARTTLS injection (CVE-2011-0411): the RSET sent in plaintext behind STARTTLS is
        never answered. Whole writes: the handshake succeeds and nothing arrives within 1 s, then
        EHLO's reply comes first. One byte at a time the RSET may reach the server after it
        started TLS: then it breaks the handshake, which ends the session (also safe)."""
        c = self.conn(mode)
        self.greet(c)
        c.send(b"STARTTLS\r\nRSET\r\n")
        c.expect("STARTTLS", 220, "2.0.0")
        if c.buf:
            raise Fail("P11: more than the 220 in plaintext: %r" % c.buf)
        try:
            self.handshake(c)
        except (ssl.SSLError, OSError) as e:
            if mode == "whole":
                raise Fail("P11: TLS handshake failed: %s" % e)
            self.note("P11/byte: the plaintext RSET broke the handshake, session ended (%s)" % e)
            c.close()
            return
        c.quiet("P11: after the handshake (a reply would be the injected RSET's)", 1.0)
        c.send(self.helo + b" probe.example\r\n")
        lines = c.expect("EHLO over TLS (the first reply must be its)", 250)
        if len(lines) < 2:
            raise Fail("P11: the first reply over TLS is %r, not EHLO's" % lines)
        c.close()

    def P12(self, mode):
        """STARTTLS in a transaction, twice, or after TLS: 503 5.5.1; with an argument 501;
        where no certificate is offered (LMTP) 454 4.7.0."""
        c = self.conn(mode)
        self.greet(c)
        if not self.args.tls:
            c.send(b"STARTTLS\r\n")
            c.expect("STARTTLS without TLS offered", 454, "4.7.0")
            self.still_serving(c, "P12")
            c.close()
            return
        c.send(b"STARTTLS x\r\n")
        c.expect("STARTTLS with an argument", 501, "5.5.4")
        c.send(b"MAIL FROM:<%s>\r\nSTARTTLS\r\nRSET\r\n" % self.args.sender.encode())
        c.expect("MAIL", 250, "2.1.0")
        c.expect("STARTTLS in a transaction", 503, "5.5.1")
        c.expect("RSET", 250, "2.0.0")
        self.starttls(c, "P12")
        c.send(b"STARTTLS\r\n")
        c.expect("STARTTLS after TLS, before EHLO", 503, "5.5.1")
        self.greet(c)
        c.send(b"STARTTLS\r\n")
        c.expect("STARTTLS after TLS (the second)", 503, "5.5.1")
        self.still_serving(c, "P12")
        c.close()

    def P13(self, mode):
        """After TLS the greeting is forgotten (MAIL: 503) and EHLO lists no STARTTLS; before
        TLS it did."""
        c = self.conn(mode)
        lines = self.greet(c)
        if "STARTTLS" not in [ln[4:] for ln in lines]:
            raise Fail("P13: EHLO before TLS lists no STARTTLS: %r" % lines)
        self.starttls(c, "P13")
        c.send(b"MAIL FROM:<%s>\r\n" % self.args.sender.encode())
        c.expect("MAIL after TLS without a new EHLO", 503, "5.5.1")
        lines = self.greet(c)
        if any(ln[4:].upper().startswith("STARTTLS") for ln in lines):
            raise Fail("P13: EHLO after TLS still lists STARTTLS: %r" % lines)
        self.envelope(c)
        hdr = self.headers(b"P13 over TLS")
        c.send(hdr + b"over TLS\r\n.\r\n")
        self.data_done(c, "P13", hdr + b"over TLS\r\n", "P13", mode)
        c.close()

    def P14(self, mode):
        """Sequence errors: 503 5.5.1, the session goes on."""
        c = self.conn(mode)
        s, r = self.args.sender.encode(), self.args.rcpt.encode()
        c.send(b"MAIL FROM:<%s>\r\n" % s)
        c.expect("MAIL before the greeting", 503, "5.5.1")
        c.send(b"RCPT TO:<%s>\r\n" % r)
        c.expect("RCPT before the greeting", 503, "5.5.1")
        c.send(b"DATA\r\n")
        c.expect("DATA before the greeting", 503, "5.5.1")
        self.greet(c)
        c.send(b"RCPT TO:<%s>\r\n" % r)
        c.expect("RCPT before MAIL", 503, "5.5.1")
        c.send(b"DATA\r\n")
        c.expect("DATA before MAIL", 503, "5.5.1")
        c.send(b"MAIL FROM:<%s>\r\n" % s)
        c.expect("MAIL", 250, "2.1.0")
        c.send(b"DATA\r\n")
        c.expect("DATA without RCPT", 503, "5.5.1")
        c.send(b"MAIL FROM:<%s>\r\n" % s)
        c.expect("nested MAIL", 503, "5.5.1")
        c.send(b"RSET\r\nRCPT TO:<%s>\r\n" % r)
        c.expect("RSET", 250, "2.0.0")
        c.expect("RCPT after RSET", 503, "5.5.1")
        self.still_serving(c, "P14")
        c.close()

    def P16(self, mode):
        """Unknown commands (other protocols' too): 500 5.5.2, the connection stays open."""
        c = self.conn(mode)
        self.greet(c)
        other = b"EHLO x" if self.args.lmtp else b"LHLO x"
        for line in [b"XYZZY", b"SGNT <alice@alpha.example>", b"MODE DMTP", b"GET / HTTP/1.1",
                     b"BDAT 10 LAST", b"EXPN staff", b"AUTH PLAIN AGFsaWNlAHNlY3JldA==",
                     b"XCLIENT ADDR=1.2.3.4", b"TURN", other, b"X"]:
            c.send(line + b"\r\n")
            c.expect("%r" % line, 500, "5.5.2")
        self.still_serving(c, "P16")
        c.close()

    def P17(self, mode):
        """Timeouts (--timeout-cmd, --timeout-data): whole: idle after MAIL, and idle inside
        DATA; byte: slowloris, one byte every 0.5 s, in a command and in DATA. Each gets
        421 4.4.2 and a close well before the trickle could finish a line."""
        tc, td = self.args.timeout_cmd, self.args.timeout_data
        if tc is None or td is None:
            raise Fail("P17 needs --timeout-cmd and --timeout-data")
        for phase, t in [("command", tc), ("DATA", td)]:
            c = self.conn(mode)
            self.greet(c)
            if phase == "DATA":
                self.envelope(c)
            else:
                c.send(b"MAIL FROM:<%s>\r\n" % self.args.sender.encode())
                c.expect("MAIL", 250, "2.1.0")
            start = time.monotonic()
            limit = 3 * t + 5  # generous: the server's timer, a loaded machine
            if mode == "whole":
                c.expect("idle in %s: the timeout" % phase, 421, "4.4.2", text="timeout")
            else:
                sent = 0
                trickle = (b"NOOP " if phase == "command" else b"Subject: slow ") + b"x" * 400
                while not self._ready(c, 0.5):
                    if time.monotonic() - start > limit:
                        raise Fail("P17: slowloris in %s: no 421 after %.1f s of 1 byte every "
                                   "0.5 s (timeout %.0f s: a per-byte, not per-line, timer?)"
                                   % (phase, time.monotonic() - start, t))
                    try:
                        c.sock.sendall(trickle[sent % len(trickle):][:1])
                    except OSError:
                        pass  # closed: the 421 should be waiting
                    sent += 1
                c.expect("slowloris in %s: the timeout" % phase, 421, "4.4.2", text="timeout")
            took = time.monotonic() - start
            if took > limit:
                raise Fail("P17: the %s timeout came after %.1f s (configured %.0f s)"
                           % (phase, took, t))
            c.closed("P17 after the 421")
            c.close()

    def _ready(self, c, secs, eof_ok=False):
        """Wait up to secs for reply bytes: True once some arrived (with eof_ok: or the peer
        closed, which is then left for Conn.closed to see again)."""
        if c.buf:
            return True
        c.sock.settimeout(secs)
        try:
            b = c.sock.recv(65536, socket.MSG_PEEK if eof_ok else 0)
        except socket.timeout:
            return False
        except ConnectionResetError:
            if eof_ok:
                return True
            raise Fail("connection reset without a 421")
        if not b:
            if eof_ok:
                return True
            raise Fail("connection closed without a 421")
        if not eof_ok:
            c.buf += b
        return True

    def P18(self, mode):
        """Handshakes that never finish (--timeout-tls): 100 connections after STARTTLS's 220,
        half silent, half stopped inside a ClientHello, and one trickling a ClientHello a byte
        every 0.5 s. Meanwhile a new connection is served and its handshake succeeds; every
        stalled one is closed without a word within the timeout (a whole-handshake deadline)."""
        t = self.args.timeout_tls
        if t is None:
            raise Fail("P18 needs --timeout-tls")
        stalled = []
        try:
            for i in range(100):
                c = self.conn(mode)
                self.greet(c)
                c.send(b"STARTTLS\r\n")
                c.expect("STARTTLS %d" % i, 220, "2.0.0")
                if i % 2:
                    c.sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
                stalled.append((c, time.monotonic()))
            slow = self.conn(mode)
            self.greet(slow)
            slow.send(b"STARTTLS\r\n")
            slow.expect("STARTTLS (trickler)", 220, "2.0.0")
            slow_start = time.monotonic()
            c = self.conn(mode)
            self.greet(c)
            self.still_serving(c, "P18: a new connection while 100 handshakes stall")
            self.starttls(c, "P18: a new connection's handshake")
            self.greet(c)
            c.close()
            # the trickler: a ClientHello announcing a 16 KiB record, one byte every 0.5 s
            hello = b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03" + b"\x00" * 400
            sent = 0
            while not self._ready(slow, 0.5, eof_ok=True):
                if time.monotonic() - slow_start > 3 * t + 5:
                    raise Fail("P18: a ClientHello trickled 1 byte every 0.5 s still open "
                               "after %.1f s (timeout_tls %.0f s)"
                               % (time.monotonic() - slow_start, t))
                try:
                    slow.sock.sendall(hello[sent:sent + 1])
                except OSError:
                    break
                sent += 1
            slow.closed("P18: the trickled handshake (closed without a word)")
            slow.close()
            for i, (c, start) in enumerate(stalled):
                c.closed("P18: stalled handshake %d (closed without a word)" % i,
                         wait=max(0.0, start + 3 * t + 5 - time.monotonic()) + 0.1)
        finally:
            for c, _ in stalled:
                c.close()

    def P19(self, mode):
        """SIZE over the limit: 552 5.3.4 at MAIL; without SIZE, a message past the limit is
        read to its end and refused 552 5.3.4 after DATA; the session goes on (docs/smtp.md)."""
        c = self.conn(mode)
        self.greet(c)
        lim = self.size_limit
        if lim is None:
            raise Fail("P19: the greeting advertises no SIZE")
        s = self.args.sender.encode()
        c.send(b"MAIL FROM:<%s> SIZE=%d\r\n" % (s, lim + 1))
        c.expect("MAIL SIZE=limit+1", 552, "5.3.4")
        c.send(b"MAIL FROM:<%s> SIZE=99999999999999999999\r\n" % s)
        c.expect("MAIL SIZE=10^20-1", 552, "5.3.4")
        c.send(b"MAIL FROM:<%s> SIZE=%d\r\nRSET\r\n" % (s, lim))
        c.expect("MAIL SIZE=limit", 250, "2.1.0")
        c.expect("RSET", 250, "2.0.0")
        # Built before DATA: the body must follow the 354 within timeout_data. Whole: 80 MiB,
        # more than the RSS bound the caller checks (--save's caller: 64 MiB), in 1 MiB chunks.
        line = b"y" * 1022 + b"\r\n"
        if mode == "whole":
            chunk = line * 1024
            n = (80 << 20) // len(chunk)
        else:
            chunk = line * ((lim + 4096) // len(line) + 1)
            n = 1
        body = [self.headers(b"P19 too big")] + [chunk] * n
        self.envelope(c)
        c.send_async(body + [b".\r\nNOOP\r\n"])
        c.expect("DATA past the limit (%d octets)" % (len(chunk) * (len(body) - 1)), 552,
                 "5.3.4")
        c.expect("NOOP after the refused message", 250, "2.0.0")
        c.join()
        self.envelope(c)
        hdr = self.headers(b"P19 after")
        c.send(hdr + b"fits\r\n.\r\n")
        self.data_done(c, "P19 a message that fits afterwards", hdr + b"fits\r\n", "P19", mode)
        c.close()

    def P20(self, mode):
        """A peer that goes away mid-DATA leaves nothing (--rcpt-p20 must stay empty); a reset
        right after the final dot must not hurt the server (--rcpt-rst: delivered or not)."""
        for how in ["close", "reset"]:
            c = self.conn(mode)
            self.greet(c)
            self.envelope(c, rcpt=self.args.rcpt_p20)
            c.send(self.headers(b"P20 partial") + b"partial\r\n.")
            if how == "reset":
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()
        c = self.conn(mode)
        self.greet(c)
        self.envelope(c, rcpt=self.args.rcpt_rst)
        c.send(self.headers(b"P20 reset after the dot") + b"body\r\n.\r\n")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        c = self.conn(mode)
        self.greet(c)
        self.still_serving(c, "P20")
        c.close()

    def R9(self, mode):
        """Log hygiene: a canary in the subject, the body, the sender's local part and an
        unknown command's argument; the caller greps the server's log for it."""
        k = self.args.canary.encode()
        if not k:
            raise Fail("R9 needs --canary")
        c = self.conn(mode)
        self.greet(c)
        c.send(b"XYZZY %sC\r\n" % k)
        c.expect("unknown command with the canary", 500, "5.5.2")
        self.envelope(c, sender="%sF@legacy.test" % self.args.canary)
        hdr = self.headers(b"%sS" % k)
        c.send(hdr + b"%sB\r\n.\r\n" % k)
        self.data_done(c, "R9", hdr + b"%sB\r\n" % k, "R9", mode)
        c.close()

    def note(self, msg):
        print("note: " + msg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--lmtp", action="store_true", help="LHLO instead of EHLO")
    ap.add_argument("--tls", action="store_true", help="STARTTLS is offered")
    ap.add_argument("--from", dest="sender", default="carol@legacy.test")
    ap.add_argument("--rcpt", default="alice@alpha.example")
    ap.add_argument("--rcpt-p20", default="bob@alpha.example")
    ap.add_argument("--rcpt-rst", default="carl@alpha.example")
    ap.add_argument("--max-rcpts", type=int, default=100)
    ap.add_argument("--bare-lf", choices=["normalize", "reject"], default="normalize",
                    help="the listener's smtp_bare_lf")
    ap.add_argument("--timeout-cmd", type=float)
    ap.add_argument("--timeout-data", type=float)
    ap.add_argument("--timeout-tls", type=float)
    ap.add_argument("--save")
    ap.add_argument("--canary", default="")
    ap.add_argument("--mode", choices=["whole", "byte", "both"], default="both")
    ap.add_argument("cases", nargs="+")
    args = ap.parse_args()
    names = CASES if args.cases == ["all"] else args.cases
    for n in names:
        if n not in CASES:
            ap.error("unknown case %s (cases: %s)" % (n, " ".join(CASES)))
    if args.lmtp:
        names = [n for n in names if n not in NO_LMTP]
    p = Probe(args)
    modes = ["whole", "byte"] if args.mode == "both" else [args.mode]
    fails = 0
    for n in names:
        for m in modes:
            t0 = time.monotonic()
            try:
                getattr(p, n)(m)
            except Fail as e:
                fails += 1
                print("FAIL %s/%s: %s" % (n, m, e), flush=True)
                continue
            except OSError as e:
                fails += 1
                print("FAIL %s/%s: %s: %s" % (n, m, type(e).__name__, e), flush=True)
                continue
            print("ok %s/%s (%.2f s)" % (n, m, time.monotonic() - t0), flush=True)
    if args.save:
        print("saved %d accepted messages" % p.saved)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
