#!/bin/sh
# Install the Debian packages dime-opa builds and tests with, only those missing.
# Idempotent: silent and quick when everything is already present.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev clang-format-14
libssl-dev libsecp256k1-dev libsodium-dev libisal-dev liburing-dev libjemalloc-dev
libbenchmark-dev zlib1g-dev libsqlite3-dev libjansson-dev sqlite3
gnuplot-nox gnupg libipsec-mb-dev libinih-dev libseccomp-dev openssl python3 iproute2
libunbound-dev nsd ldnsutils dns-root-data bind9-dnsutils libpsl-dev publicsuffix
postfix swaks libio-socket-ssl-perl libnet-ssleay-perl python3-aiosmtpd"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# postfix: the SMTP tests (tests/smtp/) run private instances under their own directories; the
# system Postfix must stay unconfigured and stopped. "No configuration" makes the package write no
# /etc/postfix/main.cf and start no daemon (its postinst and init script do nothing without one).
case " $missing " in
*" postfix "*)
	echo "postfix postfix/main_mailer_type select No configuration" |
		$SUDO debconf-set-selections
	;;
esac
# On a fresh machine the package lists are empty; refresh them once per run.
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
