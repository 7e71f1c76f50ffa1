#!/usr/bin/env bash
# dime mrec check / generate, and the reference's tls signature over a certificate.
set -u
source "$(dirname "$0")/lib.sh" "$@"

ALPHA_POK=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaQ
expect 0 '^ACCEPT ver=1 pok=1 .*pol=strict sub=mixed' -- "$DIME" mrec check "pok=$ALPHA_POK pol=strict"
expect 0 '^ACCEPT .*pok=2' -- "$DIME" mrec check "ver=1 pok=$ALPHA_POK " "pok=$ALPHA_POK"
expect 0 '^ACCEPT' -- "$DIME" mrec check "\"ver=1 pok=$ALPHA_POK \" \"pol=mixed\""
expect 1 '^REJECT .*pok' -- "$DIME" mrec check "pok=${ALPHA_POK}="
expect 1 '^REJECT' -- "$DIME" mrec check "ver=2 pok=$ALPHA_POK"
expect 1 '^REJECT' -- "$DIME" mrec check "pol=strict"
expect 1 '^REJECT' -- "$DIME" mrec check "pok=$ALPHA_POK dx=192.0.2.1"
expect 2 '' -- "$DIME" mrec check

# The reference's tls value signs SHA-512(DER): accepted for the certificate it was made for.
rec=$(cat "$IV/mrec-genrec-tls.txt")
expect 0 '^CERT MATCH' -- "$DIME" mrec check --cert "$IV/tls-cert.pem" "$rec"
expect 1 '^CERT MISMATCH' -- "$DIME" mrec check --cert "$IV/tls-cert.pem" "pok=$ALPHA_POK"

# Our own tls value (over the DER) from the POK seed file, checked back.
out=$("$DIME" mrec generate --pok "$ALPHA_POK" --key "$IV/org-alpha.pok.ed25519.pem" --tls-cert "$IV/tls-cert.pem" --dx dmtp.alpha.example --pol strict) || fail "generate"
joined=$(sed -e 's/" "//g' -e 's/"//g' <<<"$out")
expect 0 '^ACCEPT ver=1 pok=1 tls=1 dx=1 .*pol=strict' -- "$DIME" mrec check "$joined"
expect 0 '^CERT MATCH' -- "$DIME" mrec check --cert "$IV/tls-cert.pem" "$joined"
expect 1 '' -- "$DIME" mrec generate --pok "$ALPHA_POK" --key "$IV/org-beta.pok.ed25519.pem" --tls-cert "$IV/tls-cert.pem"
expect 2 '' -- "$DIME" mrec generate

# Long records split into strings of at most 255 bytes at field bounds.
args=()
for i in $(seq 1 12); do args+=(--dx "dmtp$i.a-rather-long-host-name.alpha.example"); done
out=$("$DIME" mrec generate --pok "$ALPHA_POK" "${args[@]}") || fail "generate long"
n=$(grep -o '"[^"]*"' <<<"$out" | wc -l)
[ "$n" -ge 3 ] || fail "long record gave $n strings"
while read -r s; do
	[ ${#s} -le 257 ] || fail "TXT string longer than 255: ${#s}"
done < <(grep -o '"[^"]*"' <<<"$out")

# The whole line `org create` prints (owner, class, TXT, quoted strings) is taken as it is: in
# one argument, split by the shell, with a TTL, and when the record is split into several strings.
line=$("$DIME" org create example.org 2>/dev/null) || fail "org create"
grep -q '^_dime\.example\.org\. IN TXT "ver=1 ' <<<"$line" || fail "org create printed: $line"
expect 0 '^ACCEPT ver=1 pok=1 ' -- "$DIME" mrec check "$line"
eval "split=($line)"
expect 0 '^ACCEPT ver=1 pok=1 ' -- "$DIME" mrec check "${split[@]}"
expect 0 '^ACCEPT ver=1 pok=1 ' -- "$DIME" mrec check "${line/ IN TXT/ 3600 IN TXT}"
expect 0 '^ACCEPT ver=1 pok=1 ' -- "$DIME" mrec check "${line/ IN TXT/ txt}"
args=()
for i in $(seq 1 12); do args+=(--dx "dmtp$i.a-rather-long-host-name.example.net"); done
line=$("$DIME" org create example.net "${args[@]}" 2>/dev/null) || fail "org create long"
[ "$(grep -o '"[^"]*"' <<<"$line" | wc -l)" -ge 3 ] || fail "long record not split: $line"
expect 0 '^ACCEPT ver=1 pok=1 tls=0 dx=12 ' -- "$DIME" mrec check "$line"
eval "split=($line)"
expect 0 '^ACCEPT ver=1 pok=1 tls=0 dx=12 ' -- "$DIME" mrec check "${split[@]}"
# Zone-file escapes inside the strings are undone (\DDD and \X, RFC 1035 §5.1).
expect 0 '^ACCEPT .*pol=strict' -- "$DIME" mrec check "_dime.a. IN TXT \"pok=$ALPHA_POK \\112ol=strict\""
expect 0 '^ACCEPT .*pol=strict' -- "$DIME" mrec check "_dime.a. IN TXT \"pok=$ALPHA_POK \\pol=strict\""
# A broken line is an error, not a silently different record.
expect 2 '' -- "$DIME" mrec check "_dime.a. IN TXT \"pok=$ALPHA_POK"
expect 2 '' -- "$DIME" mrec check "_dime.a. IN TXT \"pok=$ALPHA_POK\" pol=strict"
expect 2 '' -- "$DIME" mrec check "_dime.a. IN TXT"

for c in check generate; do
	expect 0 '^usage: dime' -- "$DIME" mrec $c --help
done
done_tests
