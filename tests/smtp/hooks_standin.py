#!/usr/bin/python3
"""Stand-ins for the two optional Postfix hooks of the harness (tests/smtp/postfix_lib.sh), so
that the settings are exercised before dimed serves them.

usage: hooks_standin.py --socketmap HOST:PORT --policy HOST:PORT --log FILE [--ready FILE]

socketmap (socketmap_table(5)): netstring requests "NAME KEY"; answers NOTFOUND (normal
delivery) to everything and logs "socketmap NAME KEY".
policy (SMTPD_POLICY_README): attribute=value blocks ended by an empty line; answers
"action=REJECT 5.7.1 refused by the policy stand-in" for recipients whose local part is "deny",
"action=DUNNO" otherwise, and logs "policy RECIPIENT ACTION".
SIGTERM stops it.
"""
import argparse
import signal
import socket
import threading


class Log:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def __call__(self, line):
        with self.lock, open(self.path, "a") as f:
            f.write(line + "\n")


def socketmap(conn, log):
    buf = b""
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b":" in buf:
                n, _, rest = buf.partition(b":")
                if not n.isdigit() or int(n) > 100000:
                    return
                n = int(n)
                if len(rest) < n + 1:
                    break
                query, buf = rest[:n], rest[n + 1:]
                log("socketmap " + query.decode("utf-8", "replace"))
                reply = b"NOTFOUND "
                conn.sendall(b"%d:%s," % (len(reply), reply))


def policy(conn, log):
    with conn, conn.makefile("rwb") as f:
        attrs = {}
        for line in f:
            line = line.rstrip(b"\r\n")
            if line:
                k, _, v = line.partition(b"=")
                attrs[k.decode()] = v.decode("utf-8", "replace")
                continue
            rcpt = attrs.get("recipient", "")
            if rcpt.split("@", 1)[0].lower() == "deny":
                action = "REJECT 5.7.1 refused by the policy stand-in"
            else:
                action = "DUNNO"
            log("policy %s %s" % (rcpt, action))
            f.write(b"action=" + action.encode() + b"\n\n")
            f.flush()
            attrs = {}


def listen(hostport):
    host, _, port = hostport.rpartition(":")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    return s


def serve(sock, fn, log):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=fn, args=(conn, log), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socketmap", required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready")
    a = ap.parse_args()
    log = Log(a.log)
    for hp, fn in ((a.socketmap, socketmap), (a.policy, policy)):
        threading.Thread(target=serve, args=(listen(hp), fn, log), daemon=True).start()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1):
        pass


if __name__ == "__main__":
    main()
