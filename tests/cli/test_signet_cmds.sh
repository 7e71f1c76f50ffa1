#!/usr/bin/env bash
# dime signet show / verify / fingerprint / split on the reference's vectors.
set -u
source "$(dirname "$0")/lib.sh" "$@"

ALPHA_POK=G0uWecEWfHbZ8IMAOw5bsYL7mGS5opytFYyZkChFKaQ
BETA_POK=$(pok_of "$IV/org-beta.signet.pem")
[ ${#BETA_POK} = 43 ] || fail "signet show prints no 43-character POK for org-beta: '$BETA_POK'"

expect 0 '^VALID user id$' -- "$DIME" signet verify "$IV/user-bob.signet.pem" --org "$IV/org-beta.signet.pem"
expect 0 '^VALID user id$' -- "$DIME" signet verify "$IV/user-alice.signet.bin" --org "$IV/org-alpha.signet.bin"
expect 0 '^VALID org id$' -- "$DIME" signet verify "$IV/org-alpha.signet.bin" --pok "$ALPHA_POK"
expect 0 '^VALID org id$' -- "$DIME" signet verify "$IV/org-alpha.signet.pem" --mrec "ver=1 pok=$ALPHA_POK"
# the whole TXT line `org create` prints, quoted strings split as a zone file may split them
expect 0 '^VALID org id$' -- "$DIME" signet verify "$IV/org-alpha.signet.pem" --mrec "_dime.alpha.test. IN TXT \"ver=1 \" \"pok=$ALPHA_POK\""
expect 2 '' -- "$DIME" signet verify "$IV/org-alpha.signet.pem" --mrec "_dime.alpha.test. IN TXT \"ver=1 pok=$ALPHA_POK"
grep -q 'not closed' "$TMP/stderr" || fail "--mrec unclosed quote: $(cat "$TMP/stderr")"
expect 1 '^INVALID ' -- "$DIME" signet verify "$IV/org-alpha.signet.bin" --pok "$BETA_POK"
expect 1 '^INVALID ' -- "$DIME" signet verify "$IV/org-alpha.signet.bin"
expect 1 '^INVALID ' -- "$DIME" signet verify "$IV/user-bob.signet.pem" --org "$IV/org-alpha.signet.pem"
expect 0 '^VALID ssr ssr$' -- "$DIME" signet verify "$IV/user-alice.ssr.pem"
expect 0 '^VALID user id$' -- "$DIME" signet verify "$IV/user-carol-v2.signet.pem" --org "$IV/org-alpha.signet.pem" --previous "$IV/user-carol-v1.signet.pem"
expect 1 '^INVALID broken custody' -- "$DIME" signet verify "$IV/user-carol-v2.signet.pem" --org "$IV/org-alpha.signet.pem"
expect 0 '^VALID ssr ssr$' -- "$DIME" signet verify "$IV/user-carol-v2.ssr.pem" --previous "$IV/user-carol-v1.signet.pem"
for v in s-user-bob-bad-org-crypto-sig.bin s-user-bob-tampered-name.bin s-user-bob-truncated.bin s-user-bob-bad-crc.pem s-user-bob-field-order.bin; do
	expect 1 '^INVALID ' -- "$DIME" signet verify "$IV/$v" --org "$IV/org-beta.signet.pem"
done
expect 2 '' -- "$DIME" signet verify "$TMP/does-not-exist"
expect 2 '' -- "$DIME" signet verify "$IV/user-bob.signet.pem" --org "$TMP/does-not-exist"
expect 2 '' -- "$DIME" signet verify
expect 2 '' -- "$DIME" signet verify "$IV/user-bob.signet.pem" --bogus x

# Fingerprints as the manifest lists them.
expect 0 '^DzSiHgxNhcXvOz2VEKND3zLq4jab8eD6oUJql52jrQcEy4a0iL04HFDoqADx76moUeiuZWCG0WbpHJ\+U4o7svw$' -- "$DIME" signet fingerprint --kind crypto "$IV/user-bob.signet.bin"
expect 0 '^KeKGQwYHUZF92I6nY7MGAkJSsS8FqVsIhFB1Kl0/CxMysdm1EYzLlgo4f\+F40h8NBEtG5Un//L27/j35\+Ysidw$' -- "$DIME" signet fingerprint "$IV/org-alpha.signet.pem"
expect 0 '^K7MIyXidQsxJmzVQyxUB8p/AXYwnyduV5DKCuBq8qSgPSJqBHN6arAnwQmW4BzzCCw3ukVz6ZSDUsufnXWm1Wg$' -- "$DIME" signet fingerprint "$IV/user-alice.ssr.bin"
expect 1 '' -- "$DIME" signet fingerprint --kind ssr "$IV/org-alpha.signet.pem"
expect 2 '' -- "$DIME" signet fingerprint --kind nope "$IV/org-alpha.signet.pem"

# Splits are byte-identical to the reference's.
for k in crypto full; do
	"$DIME" signet split --$k --binary "$IV/user-bob.signet.pem" >"$TMP/split.bin" || fail "split --$k"
	cmp -s "$TMP/split.bin" "$IV/user-bob.signet.$k-split.bin" || fail "split --$k differs from the reference"
	"$DIME" signet split --$k "$IV/user-bob.signet.bin" >"$TMP/split.pem" || fail "split --$k armored"
	cmp -s "$TMP/split.pem" "$IV/user-bob.signet.$k-split.pem" || fail "armored split --$k differs"
done
expect 1 '' -- "$DIME" signet split --full "$IV/user-alice.ssr.pem"

# show: labels as the spec names them, informational fields decoded.
expect 0 'Phone.*15555550123 \(MOBILE\)' -- "$DIME" signet show "$IV/user-bob.signet.pem"
expect 0 'Organizational-Signature' -- "$DIME" signet show "$IV/user-bob.signet.bin"
expect 0 'Secondary-Organizational-Key' -- "$DIME" signet show "$IV/org-alpha.signet.bin"
expect 1 '' -- "$DIME" signet show "$IV/s-user-bob-field-order.bin"

for c in show verify fingerprint split; do
	expect 0 '^usage: dime' -- "$DIME" signet $c --help
done
done_tests
