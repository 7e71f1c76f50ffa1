#!/usr/bin/env bash
# The SpamAssassin public corpus (tests/corpus/fetch-spamassassin.sh; skipped offline) through
# the gateway's whole outbound chain: each message handed over SMTP to alpha's gateway (smtplib
# as the MTA: line ends made CRLF first, as an MTA sends them; smtplib dot-stuffs) from
# alice@alpha.example to bob@beta.example,
# wrapped with alice's keys and origin-signed, queued, delivered over DMTP to beta's dimed,
# accepted into bob's Maildir; then bob's Maildir opened as bob in one batch. The opened
# messages are, as a multiset, byte for byte the messages sent (with SMTP's CRLF line ends).
# DIME_CORPUS_STRIDE=N takes every Nth message (default 8, 756 messages; 1: all 6,046). The
# same with Postfix in front (its Received: line and mbox From_ lines changed): tests/smtp/
# test_gateway_postfix_corpus.sh. Shared steps: tests/corpus/corpus_lib.sh.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../corpus/corpus_lib.sh"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
ip addr show lo 2>/dev/null | grep -q '127.0.0.1/8' || { echo "loopback is not 127.0.0.1/8: skip"; exit 77; }
corpus_fetch
unset DIME_STORE

declare -A PID
stop_all() { for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap 'stop_all; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: >"$TMP/dns.txt"
corpus_org a alpha.example 127.0.0.1 "$PORT" alice
corpus_org b beta.example 127.0.0.2 "$PORT" bob
sed -i "/^listen = 127.0.0.1:$PORT dmtp/a listen = 127.0.0.1:0 smtp" "$TMP/a/dimed.conf"
corpus_dimed a || done_tests
corpus_dimed b || done_tests
SMTP=$(sed -n 2p "$TMP/a/ports")

corpus_send "127.0.0.1:$SMTP" "$TMP/sent.list" || fail "sending the corpus"
N=$(wc -l <"$TMP/sent.list")
BOX=$TMP/b/mail/beta.example/bob
corpus_wait_maildir "$BOX" "$N"
got=$(corpus_count "$BOX")
[ "$got" -eq "$N" ] || fail "bob's Maildir holds $got messages, $N were sent"

# bob opens them all at once: as a multiset, the bytes sent
corpus_open b "$BOX" "$TMP/opened" || done_tests
corpus_check "$TMP/sent.list" "$TMP/opened" || fail "opened differs from sent"
echo "corpus through the gateway: $N messages sent, $got stored, all opened byte for byte"
done_tests
