#!/usr/bin/env python3
"""A scripted DMTP server for the client tests (stdlib only).

usage: dmtp_script_server.py CERT KEY PORTFILE LOG RULES
Serves connections one after another until killed. For each, RULES is read afresh: a first
line `MODE implicit` (TLS first) or `MODE dual` (plain banner, STARTTLS), then lines
`PREFIX<TAB>REPLY`: the first matching prefix answers a received line; REPLY's `\\n` are line
breaks. Special prefixes: `BANNER` (sent on connect), `RAWBANNER` (sent as is), `TLSDONE` (sent
after a STARTTLS handshake), `.` (end of DATA). A 354 reply starts DATA; a 220 to STARTTLS
starts TLS. LOG is emptied at each connection, then gets every received line."""
import os, socket, ssl, sys

cert, key, portfile, logf, rulesf = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
ctx.load_cert_chain(cert, key)

ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(4)
with open(portfile + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)


def serve(conn):
    mode, rules = "implicit", []
    for ln in open(rulesf, encoding="latin-1").read().split("\n"):
        if ln.startswith("MODE "):
            mode = ln[5:].strip()
        elif "\t" in ln:
            p, r = ln.split("\t", 1)
            rules.append((p, r.replace("\\n", "\n")))

    def rule(line):
        for p, r in rules:
            if line.startswith(p):
                return r
        return None

    log = open(logf, "wb")
    conn.settimeout(30)
    if mode == "implicit":
        conn = ctx.wrap_socket(conn, server_side=True)
    state = {"buf": b"", "conn": conn}

    def readline():
        while b"\n" not in state["buf"]:
            d = state["conn"].recv(4096)
            if not d:
                return None
            state["buf"] += d
        i = state["buf"].index(b"\n") + 1
        ln, state["buf"] = state["buf"][:i], state["buf"][i:]
        return ln

    def send(r):
        if r is None:
            r = "500 no rule"
        if not r.endswith("\n"):
            r += "\n"
        state["conn"].sendall(r.encode("latin-1"))

    raw = rule("RAWBANNER")
    if raw is not None:
        state["conn"].sendall(raw.encode("latin-1"))
    else:
        send(rule("BANNER"))
    in_data = False
    while True:
        ln = readline()
        if ln is None:
            break
        log.write(ln)
        log.flush()
        s = ln.decode("latin-1")
        if in_data:
            if s in (".\n", ".\r\n"):
                in_data = False
                send(rule("."))
            continue
        r = rule(s)
        send(r)
        if r is not None and r.startswith("354"):
            in_data = True
        elif r is not None and r.startswith("220") and s.upper().startswith("STARTTLS"):
            state["buf"] = b""
            state["conn"] = ctx.wrap_socket(state["conn"], server_side=True)
            send(rule("TLSDONE"))
        elif r is not None and r.startswith("221"):
            break
    log.close()


while True:
    c, _ = ls.accept()
    try:
        serve(c)
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        c.close()
