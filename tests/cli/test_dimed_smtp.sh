#!/bin/bash
# dimed's SMTP gateway listeners with swaks as the MTA: an smtp and an lmtp listener on one dimed
# for alpha.example, the keys in the key process (the default). Naked mail for a hosted user
# arrives over STARTTLS, is wrapped by the gateway (authored by postmaster@alpha.example) and
# stored in the user's Maildir as D/MIME, and opens as the user to the bytes sent; an address of
# ours without a signet is deferred at RCPT (fail closed: nothing stored); LMTP answers each
# recipient; a legacy recipient with no reinjection configured is deferred, never stored; a user
# created while dimed runs gets mail after the reload `dime user create` triggers.
# Args: DIME_BINARY INTEROP_DIR; dimed is next to dime.
source "$(dirname "$0")/lib.sh" "$@"
DIME=$(cd "$(dirname "$DIME")" && pwd)/$(basename "$DIME")
DIMED=$(dirname "$DIME")/dimed
[ -x "$DIMED" ] || { echo "no dimed next to $DIME: skip"; exit 77; }
command -v swaks >/dev/null || { echo "no swaks (tools/install-deps.sh installs it): skip"; exit 77; }
unset DIME_STORE

W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
{
	"$DIME" --store var/dime.db org create alpha.example &&
		"$DIME" --store var/dime.db user create alice@alpha.example &&
		"$DIME" --store var/dime.db user create postmaster@alpha.example
} >/dev/null 2>&1 || { fail "cannot make the store"; done_tests; }
: >dns.txt # no records: every other domain is legacy
cat >gw.conf <<CONF
hostname = gw.alpha.example
listen = 127.0.0.1:0 dmtp
listen = 127.0.0.1:0 smtp
listen = 127.0.0.1:0 lmtp
dns_static = $W/dns.txt
policy = mixed
CONF
expect 0 "is valid" -- "$DIMED" --check-config --config gw.conf
"$DIMED" --config gw.conf --ports-file ports 2>dimed.log &
PID=$!
for _ in $(seq 1 300); do
	[ "$(wc -l <ports 2>/dev/null)" = 3 ] && break
	kill -0 $PID 2>/dev/null || break
	sleep 0.1
done
[ "$(wc -l <ports 2>/dev/null)" = 3 ] || { fail "dimed did not start: $(tail -3 dimed.log)"; done_tests; }
SMTP=$(sed -n 2p ports)
LMTP=$(sed -n 3p ports)
BOX=var/mail/alpha.example/alice/new
inbox() { find "$BOX" -type f 2>/dev/null | wc -l; }

# 1. naked mail for alice over STARTTLS: 250, wrapped into her Maildir, opens to the bytes sent
printf 'From: carol@legacy.test\r\nTo: alice@alpha.example\r\nSubject: gateway\r\n\r\nHello Alice.\r\n.leading dot\r\n' >m1.eml
swaks -s 127.0.0.1 -p "$SMTP" --tls -f carol@legacy.test -t alice@alpha.example \
	--data @m1.eml >swaks1.out 2>&1 || fail "swaks STARTTLS + DATA: $(tail -5 swaks1.out)"
grep -q '^<~  250 2.0.0 delivered as' swaks1.out || fail "no 250 after DATA: $(tail -5 swaks1.out)"
for _ in $(seq 1 100); do [ "$(inbox)" -ge 1 ] && break; sleep 0.1; done
[ "$(inbox)" = 1 ] || fail "alice's Maildir holds $(inbox) messages, want 1"
f=$(find "$BOX" -type f | head -1)
grep -q 'Hello Alice' "$f" && fail "the plaintext is in the Maildir"
"$DIME" msg open --as recipient --config gw.conf <"$f" >m1.opened 2>open.err ||
	fail "open as alice: $(cat open.err)"
# swaks ends the DATA with a CRLF of its own after the file
{ cat m1.eml; printf '\r\n'; } | cmp -s - m1.opened || fail "opened is not what was sent"

# 2. an address of ours without a signet: 450 at RCPT, nothing stored (fail closed)
swaks -s 127.0.0.1 -p "$SMTP" -f carol@legacy.test -t nobody@alpha.example \
	--body x >swaks2.out 2>&1 && fail "nobody@alpha.example was accepted"
grep -q '<\*\* 45[01] 4.7.1' swaks2.out || fail "nobody: no 4xx 4.7.1: $(grep '<' swaks2.out | tail -3)"

# 3. a legacy recipient with no reinjection: deferred, nothing sent anywhere
swaks -s 127.0.0.1 -p "$SMTP" -f alice@alpha.example -t dave@legacy.test \
	--body x >swaks3.out 2>&1 && fail "legacy mail with no reinject was accepted"
grep -q '<\*\* 4[0-9][0-9] ' swaks3.out || fail "legacy: not a 4xx: $(grep '<' swaks3.out | tail -3)"

# 4. LMTP: alice accepted, nobody deferred at RCPT; alice's copy stored
swaks -s 127.0.0.1 -p "$LMTP" --protocol LMTP -f carol@legacy.test \
	-t alice@alpha.example,nobody@alpha.example --body 'lmtp' >swaks4.out 2>&1
grep -q '<\*\* 45[01] 4.7.1' swaks4.out || fail "lmtp: nobody not deferred: $(grep '<' swaks4.out | tail -4)"
[ "$(grep -c '^<-  250 2.0.0 delivered as' swaks4.out)" = 1 ] ||
	fail "lmtp: not one 250 after the data (for alice): $(grep '<' swaks4.out | tail -4)"
for _ in $(seq 1 100); do [ "$(inbox)" -ge 2 ] && break; sleep 0.1; done
[ "$(inbox)" = 2 ] || fail "after LMTP alice holds $(inbox) messages, want 2"

# 5. a user made while dimed runs: `dime user create` signals dimed, the key process reloads and
#    the gateway takes a new directory; mail for her is wrapped for her new signet and opens
reloads() { grep -c 'event=dimed.keys result=ok' dimed.log; }
r0=$(reloads)
"$DIME" --store var/dime.db user create erin@alpha.example >erin.out 2>&1 || fail "create erin: $(cat erin.out)"
grep -q 'signalled dimed' erin.out || fail "dime user create did not signal dimed: $(cat erin.out)"
for _ in $(seq 1 100); do [ "$(reloads)" -gt "$r0" ] && break; sleep 0.1; done
[ "$(reloads)" -gt "$r0" ] || fail "dimed did not reload its keys: $(tail -3 dimed.log)"
grep -q 'part=gateway' dimed.log && fail "the gateway kept its old keys: $(grep part=gateway dimed.log)"
printf 'From: carol@legacy.test\r\nTo: erin@alpha.example\r\nSubject: new\r\n\r\nHello Erin.\r\n' >m5.eml
swaks -s 127.0.0.1 -p "$SMTP" -f carol@legacy.test -t erin@alpha.example --data @m5.eml \
	>swaks5.out 2>&1 || fail "mail for a new user: $(grep '<' swaks5.out | tail -3)"
f=$(find var/mail/alpha.example/erin/new -type f 2>/dev/null | head -1)
[ -n "$f" ] || fail "nothing in erin's Maildir"
[ -n "$f" ] && { "$DIME" msg open --as recipient --config gw.conf <"$f" >m5.opened 2>open5.err ||
	fail "open as erin: $(cat open5.err)"; }
[ -n "$f" ] && { { cat m5.eml; printf '\r\n'; } | cmp -s - m5.opened || fail "erin's mail is not what was sent"; }

# the gateway's own lines name no sender (delivery lines name the mailbox, as an MTA's do)
grep 'event=smtp' dimed.log | grep 'alice@alpha.example\|carol@legacy.test' &&
	fail "an address is in the gateway's log lines"
kill -TERM $PID 2>/dev/null
wait $PID || fail "dimed exit $? after SIGTERM: $(tail -3 dimed.log)"
done_tests
