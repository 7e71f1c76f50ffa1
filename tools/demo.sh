#!/usr/bin/env bash
# `make run`: the main job as far as it exists. Creates a demo organisation and two users in the
# embedded store (./var/dime.db unless $DIME_STORE says otherwise), prints their signets,
# fingerprints and the organisation's _dime TXT record, verifies every signet, then sends a
# message from alice to bob through wrap, origin-sign, accept and open.
set -euo pipefail
DIME=${1:-build/bin/dime}
DOMAIN=${DIME_DEMO_DOMAIN:-demo.example}
OUT=var/demo
mkdir -p "$OUT"

step() { printf '\n== %s\n' "$*"; }

if "$DIME" store export "$DOMAIN" >/dev/null 2>&1; then
	step "organisation $DOMAIN already in the store (rm -rf var to start over)"
	"$DIME" mrec generate --org "$DOMAIN" | tee "$OUT/_dime.txt"
else
	step "create organisation $DOMAIN with a secondary key allowed to sign signets and messages"
	"$DIME" org create "$DOMAIN" --sok signets,messages --name "Demo Organisation" \
		--country "Utopia" --phone "15555550100;OFFICE" --website "https://$DOMAIN/" \
		--abuse "abuse@$DOMAIN" | tee "$OUT/_dime.txt"
fi
"$DIME" store export "$DOMAIN" >"$OUT/$DOMAIN.signet"

for u in alice bob; do
	addr="$u@$DOMAIN"
	if ! "$DIME" store export "$addr" >"$OUT/$addr.signet" 2>/dev/null; then
		step "create user $addr"
		"$DIME" user create "$addr" --name "${u^} Demo" --language "en-US;fr" >"$OUT/$addr.signet"
	fi
done

step "the store"
"$DIME" store list

for f in "$OUT/$DOMAIN.signet" "$OUT"/*@*.signet; do
	step "signet $(basename "$f" .signet)"
	cat "$f"
	"$DIME" signet show "$f"
done

step "verify"
record=$(sed -e 's/^[^"]*//' -e 's/" "//g' -e 's/"//g' "$OUT/_dime.txt")
"$DIME" mrec check "$record"
printf '%-28s ' "$DOMAIN"
"$DIME" signet verify "$OUT/$DOMAIN.signet" --mrec "$record"
for f in "$OUT"/*@*.signet; do
	printf '%-28s ' "$(basename "$f" .signet)"
	"$DIME" signet verify "$f" --org "$OUT/$DOMAIN.signet"
done

step "alice@$DOMAIN writes to bob@$DOMAIN: wrap and origin-sign, accept as the destination, open as bob"
cat >"$OUT/hello.eml" <<MAIL
Date: $(date -R)
From: Alice Demo <alice@$DOMAIN>
To: Bob Demo <bob@$DOMAIN>
Subject: Hello over D/MIME
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello Bob, this message travelled encrypted and signed.
MAIL
"$DIME" msg wrap --from "alice@$DOMAIN" --to "bob@$DOMAIN" --origin-sign <"$OUT/hello.eml" >"$OUT/hello.dime"
"$DIME" msg dump <"$OUT/hello.dime"
"$DIME" msg accept <"$OUT/hello.dime"
"$DIME" msg open --as recipient <"$OUT/hello.dime" >"$OUT/hello.opened.eml"
if cmp -s "$OUT/hello.eml" "$OUT/hello.opened.eml"; then
	echo "bob's copy is byte for byte what alice wrote:"
	cat "$OUT/hello.opened.eml"
else
	echo "bob's copy differs from what alice wrote" >&2
	exit 1
fi
