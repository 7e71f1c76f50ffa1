#!/usr/bin/env bash
# dime msg wrap / origin-sign / accept / open / bounce / dump between two fresh organisations,
# and opening the reference's messages with the interop parties' keys.
set -u
source "$(dirname "$0")/lib.sh" "$@"

"$DIME" org create alpha.test >/dev/null 2>&1 || fail "org create alpha.test"
"$DIME" org create beta.test >/dev/null 2>&1 || fail "org create beta.test"
"$DIME" user create alice@alpha.test >/dev/null 2>&1 || fail "user create alice"
"$DIME" user create bob@beta.test >/dev/null 2>&1 || fail "user create bob"

M=$TMP/m
mkdir -p "$M"
printf 'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: Alice <alice@alpha.test>\r\nTo: bob@beta.test\r\nSubject: crlf\r\n\r\nhello\r\n' >"$M/crlf.eml"
printf 'Subject: lf only\nFrom: a@alpha.test\n\nbody\n' >"$M/lf.eml"
printf 'Subject: twice\nSubject: again\nX-8bit: \xe9\xff\n\nnul \0 byte \xc3\xa9\n' >"$M/odd.eml"
printf 'no header block at all\n' >"$M/noheaders.eml"
: >"$M/empty.eml"
printf 'From: a@alpha.test\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"\n\npreamble\n--o\nContent-Type: multipart/alternative; boundary="i"\n\n--i\nContent-Type: text/plain\n\nplain\n--i\nContent-Type: text/html\n\n<p>html</p>\n--i--\n--o\nContent-Type: image/png\nContent-Disposition: inline\n\n\x89PNG\n--o\nContent-Type: application/pdf\n\nunterminated' >"$M/nested.eml"
{ printf 'Subject: big\nContent-Type: application/octet-stream\n\n'; head -c 17000000 /dev/urandom; } >"$M/big.eml"

for f in "$M"/*.eml; do
	n=$(basename "$f")
	"$DIME" msg wrap --from alice@alpha.test --to bob@beta.test --origin-sign <"$f" >"$TMP/w.dime" ||
		{ fail "$n: wrap"; continue; }
	expect 0 '^ACCEPT bob@beta.test [A-Za-z0-9+/]{86}$' -- "$DIME" msg accept <"$TMP/w.dime"
	"$DIME" msg open --as recipient <"$TMP/w.dime" >"$TMP/r.eml" || fail "$n: open as recipient"
	cmp -s "$f" "$TMP/r.eml" || fail "$n: recipient's copy differs from the original"
	"$DIME" msg open --as author <"$TMP/w.dime" >"$TMP/a.eml" || fail "$n: open as author"
	cmp -s "$f" "$TMP/a.eml" || fail "$n: author's copy differs from the original"
done

# Binary, then origin-sign as a separate step; an unsigned message is refused by the destination.
"$DIME" msg wrap --from alice@alpha.test --to bob@beta.test --binary --gzip always --padding alternate <"$M/crlf.eml" >"$TMP/u.bin" || fail "wrap --binary"
expect 1 '^REJECT ' -- "$DIME" msg accept <"$TMP/u.bin"
expect 0 '^D/MIME message, [0-9]+ bytes, 11 chunks' -- "$DIME" msg dump <"$TMP/u.bin"
"$DIME" msg origin-sign <"$TMP/u.bin" >"$TMP/s.bin" || fail "origin-sign"
expect 0 '^ACCEPT bob@beta.test ' -- "$DIME" msg accept <"$TMP/s.bin"
"$DIME" msg open --as recipient <"$TMP/s.bin" | cmp -s - "$M/crlf.eml" || fail "open after separate origin-sign"

# Tampering: no output at all, exit 1.
cp "$TMP/s.bin" "$TMP/t.bin"
flip_byte "$TMP/t.bin" 1500
out=$("$DIME" msg open --as recipient <"$TMP/t.bin" 2>/dev/null | wc -c)
rc=$("$DIME" msg open --as recipient <"$TMP/t.bin" >/dev/null 2>&1; echo $?)
[ "$out" = 0 ] && [ "$rc" = 1 ] || fail "tampered message: $out bytes out, exit $rc"
expect 1 '^REJECT ' -- "$DIME" msg accept <"$TMP/t.bin"
expect 1 '' -- "$DIME" msg open --as recipient </dev/null
expect 2 '' -- "$DIME" msg open --as nobody
expect 1 '' -- "$DIME" msg wrap --from alice@alpha.test --to carol@beta.test <"$M/crlf.eml"

# Bounce: the destination returns it, the origin verifies it.
"$DIME" msg bounce --reason "no such mailbox" <"$TMP/s.bin" >"$TMP/b.pem" || fail "bounce"
expect 0 '^BOUNCE alice@alpha.test beta.test 1 no such mailbox$' -- "$DIME" msg bounce-verify <"$TMP/b.pem"
# a well-formed bounce against a missing store: the store is named, none is created
expect 2 '' -- "$DIME" --store "$TMP/none/dime.db" msg bounce-verify <"$TMP/b.pem"
grep -q "no store at $TMP/none/dime.db" "$TMP/stderr" || fail "bounce-verify, no store: $(cat "$TMP/stderr")"
[ ! -e "$TMP/none" ] || fail "bounce-verify created $TMP/none"
"$DIME" msg bounce --display --code 3 --binary <"$TMP/s.bin" >"$TMP/b.bin" || fail "bounce --display"
expect 0 '^BOUNCE .* 3 ' -- "$DIME" msg bounce-verify <"$TMP/b.bin"
flip_byte "$TMP/b.bin" 200
expect 1 '^INVALID ' -- "$DIME" msg bounce-verify <"$TMP/b.bin"

# Input that is not a D/MIME message says so, from every command, and names why.
ND='not a D/MIME message: '
head -c 3000 /dev/urandom >"$TMP/random"
printf 'x' | dd of="$TMP/random" bs=1 conv=notrunc status=none
{ cat "$TMP/s.bin"; printf 'x'; } >"$TMP/trailing.bin"
expect 1 "^REJECT ${ND}empty input\$" -- "$DIME" msg accept </dev/null
expect 1 "^REJECT ${ND}" -- "$DIME" msg accept <"$TMP/random"
expect 1 "^REJECT ${ND}" -- "$DIME" msg accept <"$M/crlf.eml"
expect 1 "^REJECT ${ND}" -- "$DIME" msg accept <"$TMP/trailing.bin"
expect 1 "^INVALID ${ND}" -- "$DIME" msg bounce-verify <"$M/crlf.eml"
expect 1 "^INVALID ${ND}" -- "$DIME" msg bounce-verify <"$TMP/s.bin"
for c in "origin-sign" "open --as recipient" "open --as author" "bounce" "dump" \
	"rekey --to-signet $IV/user-bob.signet.pem"; do
	for f in /dev/null "$TMP/random" "$M/crlf.eml" "$TMP/trailing.bin"; do
		# shellcheck disable=SC2086
		"$DIME" msg $c <"$f" >/dev/null 2>"$TMP/err"
		rc=$?
		[ "$rc" = 1 ] && grep -q "dime: msg ${c%% *}: ${ND}" "$TMP/err" ||
			fail "msg $c < $(basename "$f"): exit $rc, $(cat "$TMP/err")"
	done
done
# The size limit: refused after reading at most the limit (+1), never the whole stream.
big_stream() { printf '\x07\x37\x3f\xff\xff\xff'; head -c 20M /dev/zero; }
expect 1 "^REJECT ${ND}larger than the size limit\$" -- bash -c "$(declare -f big_stream); big_stream | \"\$0\" msg accept --max-size 1048576" "$DIME"
armor_stream() { echo '-----BEGIN ENCRYPTED MESSAGE-----'; yes AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA | head -c 20M; }
got=$( (armor_stream | "$DIME" msg open --as recipient --max-size 1048576 >/dev/null) 2>&1)
[ "$got" = "dime: msg open: ${ND}larger than the size limit" ] || fail "open over --max-size: $got"
# 3 GiB of zeros on stdin: refused from its first bytes, in well under the time to read it
start=$(date +%s)
got=$(head -c 3G /dev/zero | "$DIME" msg accept)
[ $(($(date +%s) - start)) -lt 5 ] && [[ "$got" == "REJECT ${ND}"* ]] ||
	fail "3 GiB of zeros: '$got' after $(($(date +%s) - start)) s"
# a binary header announcing more than the limit is refused at once
got=$(printf '\x07\x37\x3f\xff\xff\xff' | "$DIME" msg accept --max-size 1000)
[ "$got" = "REJECT ${ND}larger than the size limit" ] || fail "announced size: $got"
expect 2 '' -- "$DIME" msg accept --max-size nope

# Missing parties are named.
expect 1 '' -- "$DIME" msg wrap --from alice@alpha.test --to carol@beta.test <"$M/crlf.eml"
grep -q 'missing the recipient signet of carol@beta.test' "$TMP/stderr" ||
	fail "wrap to carol: $(cat "$TMP/stderr")"
expect 1 '' -- "$DIME" msg wrap --from alice@alpha.test --to bob@gamma.test <"$M/crlf.eml"
grep -q 'missing the destination signet of gamma.test' "$TMP/stderr" ||
	fail "wrap to gamma: $(cat "$TMP/stderr")"
expect 1 '^REJECT alpha.test: ' -- "$DIME" msg accept --org alpha.test <"$TMP/s.bin"
expect 0 '^ACCEPT bob@beta.test ' -- "$DIME" msg accept --org beta.test <"$TMP/s.bin"

# The reference's messages, opened with the interop parties' keys.
export DIME_STORE="$TMP/ref/dime.db"
ALPHA_POK=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaQ
BETA_POK=$(pok_of "$IV/org-beta.signet.pem")
"$DIME" store import --hosted --pok "$ALPHA_POK" "$IV/org-alpha.signet.pem" >/dev/null &&
	"$DIME" store import --hosted --pok "$BETA_POK" "$IV/org-beta.signet.pem" >/dev/null &&
	"$DIME" store import --hosted "$IV/user-alice.signet.pem" "$IV/user-bob.signet.pem" \
		"$IV/org-alpha.keys.pem" "$IV/org-beta.keys.pem" "$IV/user-alice.keys.pem" \
		"$IV/user-bob.keys.pem" >/dev/null || fail "import the interop parties"
expect 0 '^ACCEPT bob@beta.example DzSiHgxN' -- "$DIME" msg accept <"$IV/msg-small.complete.bin"
expect 0 'This is a small D/MIME test message' -- "$DIME" msg open --as recipient <"$IV/msg-small.complete.bin"
expect 0 'filename="a.csv"' -- "$DIME" msg open --as recipient --user bob@beta.example <"$IV/msg-attach.complete.bin"
expect 1 '' -- "$DIME" msg open --as recipient <"$IV/x-bad-padding-byte.bin"
expect 1 '^REJECT ' -- "$DIME" msg accept <"$IV/x-bad-org-sig-bitflip.bin"
"$DIME" msg origin-sign --binary <"$IV/msg-reverse.author-output.bin" >"$TMP/rs.bin" || fail "origin-sign the reference's author output"
expect 0 '^ACCEPT carol@alpha.example ' -- "$DIME" msg accept <"$TMP/rs.bin"

# A store that hosts beta and bob but lacks alpha's and alice's signets names what is missing.
export DIME_STORE="$TMP/half/dime.db"
"$DIME" store import --hosted --pok "$BETA_POK" "$IV/org-beta.signet.pem" >/dev/null &&
	"$DIME" store import --hosted "$IV/user-bob.signet.pem" "$IV/org-beta.keys.pem" \
		"$IV/user-bob.keys.pem" >/dev/null || fail "import half of the interop parties"
expect 1 '^REJECT missing the origin signet of alpha.example: ' -- "$DIME" msg accept <"$IV/msg-small.complete.bin"
expect 1 '' -- "$DIME" msg open --as recipient <"$IV/msg-small.complete.bin"
grep -q 'missing the author signet of alice@alpha.example' "$TMP/stderr" ||
	fail "open without the author's signet: $(cat "$TMP/stderr")"

for c in wrap origin-sign accept open bounce bounce-verify dump; do
	expect 0 '^usage: dime' -- "$DIME" msg $c --help
done
done_tests
