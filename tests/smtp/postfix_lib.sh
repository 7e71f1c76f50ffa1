# Private Postfix instances for the SMTP tests (docs/postfix.md, ECOSYSTEM.md §1.2 and §2).
# Source it from bash: source tests/smtp/postfix_lib.sh
#
# pf_require                         exit 77 (skip) unless root with postfix, smtp-sink installed
# pf_free_port [N]                   N (1) distinct free TCP ports on 127.0.0.1, one a line
# pf_start DIR [NAME=VALUE ...]      a Postfix instance entirely under DIR, started; see below
# pf_stop DIR                        postfix stop, then kill by PID whatever of it is left
# pf_flush DIR                       postqueue -f: retry the deferred mail now
# pf_queue DIR                       the queue, one JSON object a message (postqueue -j)
# pf_queue_count DIR                 how many messages are queued (print)
# pf_wait_queue_empty DIR [SECONDS]  poll until the queue is empty (default 60 s); 1 on timeout
# pf_wait_queue_count DIR N [SECONDS] poll until N messages are queued
# pf_log DIR                         the instance's maillog on stdout
# pf_accepted DIR HOST:PORT          "MESSAGE-ID RECIPIENT" for every delivery the server at
#                                    HOST:PORT answered 2xx (status=sent), from the maillog
# pf_wait_log DIR REGEX [SECONDS]    poll until the maillog has a line matching REGEX (grep -E)
# pf_sink_start SINKDIR HOST:PORT [smtp-sink flags...]
#                                    smtp-sink keeping one file per transaction in SINKDIR/mail/
# pf_sink_stop SINKDIR               stop it by PID
# pf_sink_count SINKDIR              how many transactions the sink kept (print)
# pf_wait_sink_count SINKDIR N [SECONDS]  poll until the sink kept at least N
# pf_wait_port HOST:PORT [SECONDS]   poll until HOST:PORT answers with an SMTP 220 banner
# pf_sandwich DIR [SETTINGS...]      smtp-sink in DIR/sink on a free port and Postfix in DIR/pf
#                                    relaying to it (pf_start settings: filter=, reinject=...)
# pf_cleanup                         stop every instance and sink this shell started (for traps)
#
# Typical use (dimed's tests: dimed listens on the filter port, reinjects to $R):
#   source tests/smtp/postfix_lib.sh; pf_require
#   trap 'pf_cleanup; rm -rf "$TMP"' EXIT; chmod 0755 "$TMP"
#   read -r F R < <(pf_free_port 2 | xargs)
#   pf_sandwich "$TMP/mx" filter=127.0.0.1:$F reinject=127.0.0.1:$R || fail ...
#   swaks -s "$(pf_port "$TMP/mx/pf" smtpd)" ...; pf_wait_queue_empty "$TMP/mx/pf"
#   ls "$TMP/mx/sink/mail"
# Call pf_start, pf_sink_start and pf_sandwich in the test's own shell, not in $(...): that is
# where pf_cleanup learns what to stop.
#
# pf_start settings (all optional; ports as HOST:PORT, all on loopback):
#   smtpd=127.0.0.1:P     where clients submit (the front smtpd)             [pf_free_port]
#   filter=127.0.0.1:P    the after-queue content filter (dimed: 10025); "" = no filter  [none]
#   filter_proto=smtp|lmtp  how Postfix speaks to the filter                   [smtp]
#   concurrency=N         parallel deliveries to the filter and reinjection smtpd processes [8]
#   reinject=127.0.0.1:P  the smtpd the filter hands mail back to (dimed: 10026)  [pf_free_port]
#   relay=127.0.0.1:P     relayhost: where everything goes after the filter (a sink) [required]
#   socketmap=127.0.0.1:P transport_maps = socketmap:inet:127.0.0.1:P:dime (dimed's map) [none]
#   policy=127.0.0.1:P    check_policy_service on the front smtpd's RCPT TO    [none]
#   filter_opt=NAME=VALUE a -o NAME=VALUE of the dimefilter service (master.cf); repeatable,
#                         e.g. filter_opt=smtp_line_length_limit=0                [none]
#   any other NAME=VALUE  set in main.cf as is (postconf -e), after the settings above; e.g.
#                         STARTTLS on the smtpds: smtpd_tls_security_level=may
#                         smtpd_tls_cert_file=CERT smtpd_tls_key_file=KEY
#
# The instance: DIR/etc (config_directory: main.cf, master.cf), DIR/spool (queue_directory),
# DIR/data (data_directory), DIR/maillog (maillog_file), DIR/ports (the ports, NAME=HOST:PORT,
# read them with pf_port DIR NAME). Its processes run as the postfix user and postdrop group the
# Debian package creates, so DIR and every directory above it must be searchable by them: the
# tests make their temporary directory 0755.
#
# Why no /etc/postfix/main.cf is needed: `postfix -c DIR` and `postqueue -c DIR` only insist that
# DIR be listed in the default main.cf's alternate_config_directories when they run as a user
# other than root (they are set-gid or start daemons); run as root, they take any directory. The
# tests run as root (CI does; pf_require skips otherwise), so the system Postfix stays
# unconfigured ("No configuration", tools/install-deps.sh) and is never started or touched.

PF_DEADLINE=${PF_DEADLINE:-60}
PF_INSTANCES=()
PF_SINKS=()

pf_require() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "the Postfix tests run private Postfix instances and need root: skip"
		exit 77
	fi
	local c
	for c in postfix postconf postqueue smtp-sink smtp-source swaks python3; do
		command -v "$c" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
		command -v "$c" >/dev/null || {
			echo "no $c (tools/install-deps.sh installs postfix, swaks, python3): skip"
			exit 77
		}
	done
	getent passwd postfix >/dev/null && getent group postdrop >/dev/null || {
		echo "no postfix user or postdrop group (the postfix package makes them): skip"
		exit 77
	}
}

pf_free_port() { # [N]: N distinct free ports, one a line (held together while chosen)
	python3 -c 'import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
for s in ss:
    print(s.getsockname()[1])' "${1:-1}"
}

# pf_wait_port HOST:PORT [SECONDS]: an SMTP server there said 220.
pf_wait_port() {
	local hp=$1 t=${2:-$PF_DEADLINE} end
	end=$((SECONDS + t))
	while [ "$SECONDS" -lt "$end" ]; do
		if timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -c 3 <&3' _ "${hp%:*}" "${hp##*:}" \
			2>/dev/null | grep -q '^220'; then
			return 0
		fi
		sleep 0.1
	done
	echo "pf_wait_port: nothing answered 220 on $hp in ${t}s" >&2
	return 1
}

pf_port() { sed -n "s/^$2=//p" "$1/ports"; } # DIR NAME -> HOST:PORT

_pf_pc() { postconf -c "$PF_CONF" "$@"; } # postconf on the instance being built

pf_start() {
	local dir=$1 smtpd="" filter="" proto=smtp conc=8 reinject="" relay="" smap="" policy=""
	local extra=() fopts=() kv
	shift
	for kv in "$@"; do
		case $kv in
		smtpd=*) smtpd=${kv#*=} ;;
		filter=*) filter=${kv#*=} ;;
		filter_proto=*) proto=${kv#*=} ;;
		concurrency=*) conc=${kv#*=} ;;
		reinject=*) reinject=${kv#*=} ;;
		relay=*) relay=${kv#*=} ;;
		socketmap=*) smap=${kv#*=} ;;
		policy=*) policy=${kv#*=} ;;
		filter_opt=*=*) fopts+=("dimefilter/unix/${kv#filter_opt=}") ;;
		*=*) extra+=("$kv") ;;
		*)
			echo "pf_start: not NAME=VALUE: $kv" >&2
			return 1
			;;
		esac
	done
	[ -n "$relay" ] || {
		echo "pf_start: relay=HOST:PORT is required (where mail goes after the filter)" >&2
		return 1
	}
	case $proto in smtp | lmtp) ;; *)
		echo "pf_start: filter_proto is smtp or lmtp, not $proto" >&2
		return 1
		;;
	esac
	local fp
	fp=$(pf_free_port 2) || return 1
	[ -n "$smtpd" ] || smtpd=127.0.0.1:$(echo "$fp" | sed -n 1p)
	[ -n "$reinject" ] || reinject=127.0.0.1:$(echo "$fp" | sed -n 2p)

	mkdir -p "$dir/etc" "$dir/spool" "$dir/data" || return 1
	dir=$(cd "$dir" && pwd)
	PF_INSTANCES+=("$dir")
	# the postfix user works in these (queue files, the maillog through postlogd, caches)
	chmod 0755 "$dir" "$dir/etc" "$dir/spool"
	chown postfix "$dir/data" && chmod 0700 "$dir/data"
	printf 'smtpd=%s\nfilter=%s\nreinject=%s\nrelay=%s\n' "$smtpd" "$filter" "$reinject" \
		"$relay" >"$dir/ports"
	PF_CONF=$dir/etc
	: >"$PF_CONF/main.cf"
	# The Debian package's master.cf (every Postfix service) without its port-25 listener.
	cp /usr/share/postfix/master.cf.dist "$PF_CONF/master.cf" || return 1

	# main.cf: the sandwich of ECOSYSTEM.md §1.2, all local, no DNS, nothing outside DIR.
	_pf_pc -e \
		"compatibility_level = 3.6" \
		"queue_directory = $dir/spool" \
		"data_directory = $dir/data" \
		"maillog_file = $dir/maillog" \
		"maillog_file_prefixes = $dir" \
		"mail_owner = postfix" \
		"setgid_group = postdrop" \
		"myhostname = gw.example.org" \
		"mydomain = example.org" \
		"myorigin = \$myhostname" \
		"mydestination =" \
		"inet_interfaces = loopback-only" \
		"inet_protocols = ipv4" \
		"mynetworks = 127.0.0.0/8" \
		"relayhost = [${relay%:*}]:${relay##*:}" \
		"smtp_dns_support_level = disabled" \
		"smtpd_relay_restrictions = permit_mynetworks, reject" \
		"alias_maps =" \
		"alias_database =" \
		"notify_classes =" \
		"biff = no" \
		"enable_long_queue_ids = yes" \
		"smtpd_forbid_bare_newline = normalize" \
		"queue_run_delay = 5s" \
		"minimal_backoff_time = 5s" \
		"maximal_backoff_time = 30s" \
		"delay_warning_time = 0" || return 1
	if [ -n "$filter" ]; then
		_pf_pc -e \
			"content_filter = dimefilter:[${filter%:*}]:${filter##*:}" \
			"receive_override_options = no_address_mappings" \
			"dimefilter_destination_recipient_limit = 1" \
			"dimefilter_destination_concurrency_limit = $conc" || return 1
	fi
	[ -z "$smap" ] || _pf_pc -e "transport_maps = socketmap:inet:$smap:dime" || return 1
	if [ -n "$policy" ]; then
		local rr="check_policy_service inet:$policy, permit_mynetworks, reject"
		_pf_pc -e "smtpd_recipient_restrictions = $rr" || return 1
	fi
	[ "${#extra[@]}" -eq 0 ] || _pf_pc -e "${extra[@]}" || return 1

	# master.cf: no chroot anywhere (the queue is not a chroot jail here), the front smtpd, the
	# filter transport and the reinjection smtpd.
	_pf_pc -MX smtp/inet || return 1
	_pf_pc -F '*/*/chroot = n' || return 1
	_pf_pc -M "$smtpd/inet = $smtpd inet n - n - - smtpd" || return 1
	_pf_pc -M "dimefilter/unix = dimefilter unix - - n - $conc $proto" || return 1
	_pf_pc -P "dimefilter/unix/disable_mime_output_conversion = yes" \
		"dimefilter/unix/${proto}_generic_maps =" || return 1
	[ "$proto" = lmtp ] || _pf_pc -P "dimefilter/unix/smtp_send_xforward_command = yes" || return 1
	[ "${#fopts[@]}" -eq 0 ] || _pf_pc -P "${fopts[@]}" || return 1
	_pf_pc -M "$reinject/inet = $reinject inet n - n - $conc smtpd" || return 1
	_pf_pc -P \
		"$reinject/inet/content_filter =" \
		"$reinject/inet/receive_override_options = no_unknown_recipient_checks,no_header_body_checks,no_milters" \
		"$reinject/inet/smtpd_relay_restrictions =" \
		"$reinject/inet/smtpd_recipient_restrictions = permit_mynetworks,reject" \
		"$reinject/inet/mynetworks = 127.0.0.0/8" \
		"$reinject/inet/smtpd_authorized_xforward_hosts = 127.0.0.0/8" || return 1

	# start runs `postfix check`'s fatal checks first and makes the queue's directories
	_pf_cmd "$dir" postfix -c "$PF_CONF" start || {
		echo "pf_start: postfix start failed:" >&2
		cat "$dir/start.log" >&2
		[ ! -f "$dir/maillog" ] || tail -20 "$dir/maillog" >&2
		return 1
	}
	# The master binds its listeners after it detached: a port someone else holds shows up only
	# in the maillog. Both smtpds must answer.
	if ! pf_wait_port "$smtpd" || ! pf_wait_port "$reinject"; then
		[ ! -f "$dir/maillog" ] || tail -20 "$dir/maillog" >&2
		return 1
	fi
}

# Postfix commands write their errors to syslog, and to stderr only when it is a terminal: with
# no syslog (containers, CI) a failure says nothing. script(1) gives them a terminal, so that
# DIR/start.log has the reason.
_pf_cmd() { # DIR command...
	local dir=$1 q
	shift
	q=$(printf '%q ' "$@")
	if command -v script >/dev/null; then
		script -qec "$q" /dev/null </dev/null >>"$dir/start.log" 2>&1
	else
		"$@" </dev/null >>"$dir/start.log" 2>&1
	fi
}

_pf_master_pid() { # DIR -> the master's PID, if it is running
	local p
	p=$(tr -d ' \n' <"$1/spool/pid/master.pid" 2>/dev/null) || return 1
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}

# The processes of this instance: Postfix passes MAIL_CONFIG=DIR/etc to every daemon it runs
# (import_environment), so /proc says which are ours. Never matched by name: other instances
# (and other tests' daemons) run the same programs.
_pf_pids() { # DIR
	local f
	for f in $(grep -lzxF "MAIL_CONFIG=$1/etc" /proc/[0-9]*/environ 2>/dev/null); do
		f=${f#/proc/}
		echo "${f%/environ}"
	done
}

pf_stop() {
	local dir p end left
	[ -d "$1/etc" ] || return 0
	dir=$(cd "$1" && pwd)
	if _pf_master_pid "$dir" >/dev/null; then
		_pf_cmd "$dir" postfix -c "$dir/etc" stop
	fi
	end=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$end" ]; do
		left=$(_pf_pids "$dir")
		[ -n "$left" ] || return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	for p in $left; do kill -9 "$p" 2>/dev/null; done
	echo "pf_stop: killed what postfix stop left of $dir: $left" >&2
}

pf_flush() { postqueue -c "$1/etc" -f; }
pf_queue() { postqueue -c "$1/etc" -j; }

pf_queue_count() {
	local out
	out=$(postqueue -c "$1/etc" -j) || return 1
	[ -n "$out" ] || {
		echo 0
		return 0
	}
	printf '%s\n' "$out" | wc -l
}

pf_wait_queue_count() { # DIR N [SECONDS]
	local n end t=${3:-$PF_DEADLINE}
	end=$((SECONDS + t))
	while :; do
		n=$(pf_queue_count "$1") && [ "$n" = "$2" ] && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.2
	done
	echo "pf_wait_queue_count: $1 holds ${n:-?} messages, not $2, after ${t}s" >&2
	return 1
}

pf_wait_queue_empty() { pf_wait_queue_count "$1" 0 "${2:-$PF_DEADLINE}"; }

pf_log() { cat "$1/maillog" 2>/dev/null; }

# What the next hop at HOST:PORT took responsibility for: Postfix removed these recipients from
# its queue because that server said 250 (the filter: dimed; a relayhost: the sink). Each line
# "<message-id> recipient", in log order; queue IDs are mapped to the Message-ID cleanup logged
# for them last, so a reused queue ID maps to its latest message.
pf_accepted() { # DIR HOST:PORT
	awk -v hp="${2%:*}[${2%:*}]:${2##*:}," '
		/ postfix\/cleanup\[[0-9]+\]: [0-9A-Za-z]+: message-id=/ {
			q = $6; sub(/:$/, "", q)
			m = $7; sub(/^message-id=/, "", m)
			id[q] = m
		}
		/ postfix\/(smtp|lmtp)\[[0-9]+\]: / && / status=sent / && index($0, " relay=" hp) {
			q = $6; sub(/:$/, "", q)
			r = $7; sub(/^to=/, "", r); sub(/,$/, "", r)
			print (q in id ? id[q] : "?" q), r
		}' "$1/maillog"
}

pf_wait_log() { # DIR REGEX [SECONDS]
	local end t=${3:-$PF_DEADLINE}
	end=$((SECONDS + t))
	while :; do
		grep -qE -- "$2" "$1/maillog" 2>/dev/null && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.2
	done
	echo "pf_wait_log: no /$2/ in $1/maillog after ${t}s" >&2
	return 1
}

# smtp-sink keeping every transaction in SINKDIR/mail/ (one file each, the envelope in its first
# X-* lines), its PID in SINKDIR/pid, its output in SINKDIR/log. Extra arguments go to smtp-sink
# before the address (fault modes: -r, -f, -Q, -q, -A, -W, -L; see smtp-sink(1)).
pf_sink_start() { # SINKDIR HOST:PORT [flags...]
	local d=$1 hp=$2
	shift 2
	mkdir -p "$d/mail" || return 1
	d=$(cd "$d" && pwd)
	chmod 0755 "$d"
	PF_SINKS+=("$d")
	local user=()
	if [ "$(id -u)" -eq 0 ]; then
		chown nobody "$d/mail"
		user=(-u nobody)
	fi
	smtp-sink "${user[@]}" -c -d "$d/mail/" "$@" "$hp" 256 </dev/null >"$d/log" 2>&1 &
	echo $! >"$d/pid"
	pf_wait_port "$hp" || {
		cat "$d/log" >&2
		return 1
	}
}

pf_sink_stop() {
	local p
	p=$(cat "$1/pid" 2>/dev/null) || return 0
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null
	local end=$((SECONDS + 10))
	while kill -0 "$p" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null # reaps it when it is this shell's child
	rm -f "$1/pid"
	return 0
}

pf_sink_count() { find "$1/mail" -type f | wc -l; }

pf_wait_sink_count() { # SINKDIR N [SECONDS]
	local n end t=${3:-$PF_DEADLINE}
	end=$((SECONDS + t))
	while :; do
		n=$(pf_sink_count "$1")
		[ "$n" -ge "$2" ] && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.2
	done
	echo "pf_wait_sink_count: $1 kept $n, not $2, after ${t}s" >&2
	return 1
}

pf_sandwich() { # DIR [pf_start settings...]
	local dir=$1 sp
	shift
	mkdir -p "$dir" && chmod 0755 "$dir" || return 1
	sp=$(pf_free_port) || return 1
	pf_sink_start "$dir/sink" "127.0.0.1:$sp" || return 1
	pf_start "$dir/pf" relay="127.0.0.1:$sp" "$@"
}

pf_cleanup() {
	local d
	for d in "${PF_INSTANCES[@]}"; do pf_stop "$d"; done
	for d in "${PF_SINKS[@]}"; do pf_sink_stop "$d"; done
	PF_INSTANCES=()
	PF_SINKS=()
}
