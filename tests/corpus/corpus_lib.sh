# The SpamAssassin corpus through the SMTP gateway: what tests/cli/test_gateway_corpus.sh (SMTP
# straight to alpha's gateway) and tests/smtp/test_gateway_postfix_corpus.sh (Postfix in front)
# share. Source it from bash after tests/cli/lib.sh (it uses $DIME, $DIMED, $TMP, fail):
#   source tests/corpus/corpus_lib.sh
#
# corpus_fetch                    CORPUS= the corpus's directory (fetched once into build/corpus,
#                                 tests/corpus/fetch-spamassassin.sh); exit 77 (skip) offline.
#                                 STRIDE= ${DIME_CORPUS_STRIDE:-8}: every STRIDE-th message
#                                 (8: 756 messages; 1: all 6,046)
# corpus_org DIR DOMAIN ADDR PORT USER
#                                 an organisation with one user in $TMP/DIR (dime.db, TLS
#                                 certificate, dimed.conf: DMTP on ADDR:PORT, Maildirs in
#                                 $TMP/DIR/mail), its DX record appended to $TMP/dns.txt (the
#                                 dimeds' dns_static); add listeners to dimed.conf with sed
# corpus_dimed DIR                dimed on $TMP/DIR/dimed.conf, its PID in PID[DIR] (declare -A
#                                 PID in the test), waited for until it wrote its ports file
# corpus_send HOST:PORT LIST      the corpus from alice@alpha.example to bob@beta.example
#                                 (corpus_smtp.py send: LIST gets "sha256 path reply" lines)
# corpus_wait_maildir BOX N [SECONDS]  poll until BOX/new holds N messages (default 600 s)
# corpus_open DIR BOX OUT         bob's Maildir BOX opened as recipient in one batch into OUT,
#                                 alice's signet fetched first as bob's client would
# corpus_check LIST OUT [corpus_smtp.py check options]  the opened messages against LIST

CORPUS_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

corpus_fetch() {
	CORPUS=$(sh "$CORPUS_HERE/fetch-spamassassin.sh" "$CORPUS_HERE/../../build/corpus") || exit $?
	STRIDE=${DIME_CORPUS_STRIDE:-8}
}

corpus_org() { # DIR DOMAIN ADDR PORT USER
	local d=$TMP/$1
	mkdir -p "$d"
	{
		"$DIME" --store "$d/dime.db" org create "$2" &&
			"$DIME" --store "$d/dime.db" user create "$5@$2" &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" \
				-days 2 -subj "/CN=dx.$2" -addext "subjectAltName=DNS:dx.$2"
	} >/dev/null 2>&1 || fail "setting up $2"
	"$DIME" --store "$d/dime.db" mrec generate --org "$2" --tls-cert "$d/cert.pem" --dx "dx.$2" \
		--pol mixed | sed -e 's/^\([^ ]*\)\. IN TXT /\1 3600 TXT /' >>"$TMP/dns.txt"
	printf 'dx.%s 3600 A %s\n' "$2" "$3" >>"$TMP/dns.txt"
	cat >"$d/dimed.conf" <<EOF
hostname = dx.$2
listen = $3:$4 dmtp
store = $d/dime.db
spool = $d/spool
outq = $d/outq
maildir_root = $d/mail
dx_port = $4
dns_static = $TMP/dns.txt
outq_first_retry = 1s
outq_max_interval = 5s
max_message = 33554432
[tls]
cert = $d/cert.pem
key = $d/key.pem
EOF
}

corpus_dimed() { # DIR
	local d=$TMP/$1 end
	rm -f "$d/ports"
	"$DIMED" --config "$d/dimed.conf" --ports-file "$d/ports" >>"$d/dimed.log" 2>&1 &
	PID[$1]=$!
	end=$((SECONDS + 60))
	until [ -s "$d/ports" ]; do
		kill -0 "${PID[$1]}" 2>/dev/null && [ "$SECONDS" -lt "$end" ] ||
			{ fail "dimed $1 did not start: $(tail -3 "$d/dimed.log")"; return 1; }
		sleep 0.1
	done
}

corpus_send() { # HOST:PORT LIST
	/usr/bin/env python3 "$CORPUS_HERE/corpus_smtp.py" send --corpus "$CORPUS" --stride "$STRIDE" \
		--server "$1" --from alice@alpha.example --to bob@beta.example --out "$2"
}

corpus_count() { find "$1/new" -type f 2>/dev/null | wc -l; }

corpus_wait_maildir() { # BOX N [SECONDS]
	local end=$((SECONDS + ${3:-600}))
	until [ "$(corpus_count "$1")" -ge "$2" ]; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 1
	done
}

corpus_open() { # DIR BOX OUT
	"$DIME" resolve alice@alpha.example --signets --config "$TMP/$1/dimed.conf" >/dev/null 2>&1 ||
		{ fail "bob's side cannot fetch alice's signet"; return 1; }
	"$DIME" --store "$TMP/$1/dime.db" batch open --as recipient --in "$2" --out "$3" \
		>"$TMP/open.out" 2>&1 || { fail "batch open: $(tail -3 "$TMP/open.out")"; return 1; }
}

corpus_check() { # LIST OUT [options]
	local list=$1 out=$2
	shift 2
	/usr/bin/env python3 "$CORPUS_HERE/corpus_smtp.py" check --corpus "$CORPUS" --sent "$list" \
		--opened "$out" "$@"
}
