#!/usr/bin/python3
"""A stand-in after-queue content filter for the Postfix harness (tests/smtp/postfix_lib.sh).

It listens where Postfix's dimefilter transport delivers, relays each transaction unchanged to
the reinjection smtpd, and answers the final dot only with the reinjection's own reply
(pass-through): Postfix keeps the message until the next hop has it. It is not dimed; it proves
the harness so that dimed can take its place.

usage: passfilter.py --listen HOST:PORT --downstream HOST:PORT --log FILE [--ready FILE] [--lmtp]
Each transaction appends one JSON line to FILE: from, rcpt (list), size, reply.
--ready FILE is written once the listener accepts connections. SIGTERM stops it.
--lmtp: speak LMTP to Postfix (LHLO; one reply after the dot, which is right for the one
recipient per transaction the harness configures). The downstream is SMTP either way.
"""
import argparse
import asyncio
import json
import signal
import smtplib
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP


def hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


class PassThrough:
    def __init__(self, downstream, log):
        self.downstream = downstream
        self.log = log
        self.lock = threading.Lock()

    def relay(self, envelope):
        """One transaction to the downstream: its reply to the final dot, or the first refusal."""
        host, port = self.downstream
        try:
            with smtplib.SMTP(host, port, timeout=60) as s:
                s.ehlo("passfilter.test")
                opts = []
                for o in envelope.mail_options:
                    name = o.split("=", 1)[0].lower()
                    if name == "body" and s.has_extn("8bitmime"):
                        opts.append(o)
                    elif name == "smtputf8" and s.has_extn("smtputf8"):
                        opts.append(o)
                code, msg = s.mail(envelope.mail_from, opts)
                if code != 250:
                    return code, msg
                for r in envelope.rcpt_tos:
                    code, msg = s.rcpt(r)
                    if code not in (250, 251):
                        return code, msg
                return s.data(envelope.original_content)
        except smtplib.SMTPResponseException as e:
            return e.smtp_code, e.smtp_error
        except (OSError, smtplib.SMTPException) as e:
            return 451, ("4.4.1 reinjection failed: %s" % e).encode()

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        code, msg = await loop.run_in_executor(None, self.relay, envelope)
        text = msg.decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
        reply = "%d %s" % (code, text)
        rec = {"from": envelope.mail_from, "rcpt": envelope.rcpt_tos,
               "size": len(envelope.original_content), "reply": reply}
        with self.lock, open(self.log, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return reply


class LMTPController(Controller):
    def factory(self):
        return LMTP(self.handler, **self.SMTP_kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--downstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready")
    ap.add_argument("--lmtp", action="store_true")
    a = ap.parse_args()
    host, port = hostport(a.listen)
    handler = PassThrough(hostport(a.downstream), a.log)
    ctl = (LMTPController if a.lmtp else Controller)(handler, hostname=host, port=port,
                                                     decode_data=False, ready_timeout=60)
    ctl.start()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%s\n" % a.listen)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        pass
    ctl.stop()


if __name__ == "__main__":
    main()
