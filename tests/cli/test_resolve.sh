#!/usr/bin/env bash
# dime resolve: the management record of a domain over nsd's DNSSEC zones (tests/dns/mkzones.sh)
# and from a static file: verdicts, validation levels, exit codes, JSON, bad input.
set -u
source "$(dirname "$0")/lib.sh" "$@"
ZONES=$(cd "$(dirname "$0")/../dns" && pwd)/mkzones.sh

mkdir "$TMP/z"
if ! sh "$ZONES" "$TMP/z" >"$TMP/z/mkzones.log" 2>&1; then
	cat "$TMP/z/mkzones.log" >&2
	fail "mkzones.sh did not start nsd"
	done_tests
fi
trap '[ -f "$TMP/z/nsd.pid" ] && kill "$(cat "$TMP/z/nsd.pid")" 2>/dev/null; rm -rf "$TMP"' EXIT
DNS=(--dns-config "$TMP/z/unbound.conf" --trust-anchor "$TMP/z/ta.ds")

expect 0 '^verdict: +found' -- "$DIME" resolve good.dime.test "${DNS[@]}"
expect 0 '^validation: secure' -- "$DIME" resolve good.dime.test "${DNS[@]}"
expect 0 'record: +_dime.good.dime.test \(the domain' -- "$DIME" resolve good.dime.test "${DNS[@]}"
# an address at a subdomain: good.dime.test says sub=strict, so its record applies
expect 0 "record: +_dime.good.dime.test \(an ancestor's" -- \
	"$DIME" resolve bob@sub.good.dime.test "${DNS[@]}"
expect 1 '^verdict: +legacy' -- "$DIME" resolve absent.dime.test "${DNS[@]}"
expect 1 '^validation: secure' -- "$DIME" resolve absent.dime.test "${DNS[@]}"
for z in bogus expired unsigned; do
	expect 1 '^verdict: +bogus' -- "$DIME" resolve "$z.dime.test" "${DNS[@]}"
done
expect 0 '^validation: insecure' -- "$DIME" resolve insecure.dime.test "${DNS[@]}"
expect 0 '"verdict":"found","validation":"secure"' -- \
	"$DIME" resolve good.dime.test "${DNS[@]}" --json
expect 1 '"verdict":"bogus".*"why":".*validation failure' -- \
	"$DIME" resolve bogus.dime.test "${DNS[@]}" --json

# the server gone: a temporary failure, never legacy
kill "$(cat "$TMP/z/nsd.pid")"
sleep 0.5
expect 1 '^verdict: +tempfail' -- "$DIME" resolve good.dime.test "${DNS[@]}" --timeout 2

# offline: a static file
cat >"$TMP/records" <<'R'
_dime.example.org 600 TXT "ver=1 pok=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo " "dx=mx.example.org"
_dx.ref.example 60 TXT "ver=1 pok=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo"
R
expect 0 '^validation: configured' -- "$DIME" resolve alice@example.org --dns-static "$TMP/records"
expect 0 '^dx: +mx.example.org' -- "$DIME" resolve example.org --dns-static "$TMP/records"
expect 0 'record: +_dx.ref.example' -- "$DIME" resolve ref.example --dns-static "$TMP/records"
expect 1 '^verdict: +legacy' -- "$DIME" resolve other.org --dns-static "$TMP/records"

# bad input: clear errors, exit 2
expect 2 '' -- "$DIME" resolve
expect 2 '' -- "$DIME" resolve "bad name.org" --dns-static "$TMP/records"
expect 2 '' -- "$DIME" resolve example.org --dns-static "$TMP/nope"
expect 2 '' -- "$DIME" resolve example.org --frobnicate x
expect 2 '' -- "$DIME" resolve example.org --timeout 0
expect 0 'usage: dime resolve' -- "$DIME" resolve --help
echo '_dime.example.org 600 TXT unquoted' >"$TMP/bad"
"$DIME" resolve example.org --dns-static "$TMP/bad" 2>"$TMP/err" && fail "bad static file accepted"
grep -q "bad:1:" "$TMP/err" || fail "the bad static file's line is not named: $(cat "$TMP/err")"
done_tests
