#!/usr/bin/env bash
# dime conformance takes every verdict from the data: a copy of the interop folder whose cases
# carry other names runs exactly as the original, and flipping one project_expect makes it fail.
set -u
source "$(dirname "$0")/lib.sh" "$@"

command -v python3 >/dev/null || { echo "python3 missing: skip"; exit 77; }

passed() { sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1"; }

"$DIME" conformance "$IV" >"$TMP/orig.out" 2>&1 || fail "original vectors: $(grep -v '^PASS' "$TMP/orig.out")"
orig=$(passed "$TMP/orig.out")
[ -n "$orig" ] || fail "no summary line from the original run"

# The copy: every case id renamed (kind and files kept), and the mrec parse-probes file under
# another name too, so nothing can be keyed on what a case or that file is called.
mkdir "$TMP/iv"
cp -r "$IV"/. "$TMP/iv/"
chmod -R u+w "$TMP/iv"
mv "$TMP/iv/mrec-parse-probes.json" "$TMP/iv/probes-renamed.json"
python3 - "$TMP/iv/manifest.json" <<'EOF' || fail "rewriting the manifest"
import json, sys
path = sys.argv[1]
m = json.load(open(path))
for i, c in enumerate(m["cases"]):
    c["id"] = "renamed-%02d:%s" % (i, c["kind"])
    f = c.get("files", {})
    if "json" in f:
        f["json"] = f["json"].replace("mrec-parse-probes.json", "probes-renamed.json")
json.dump(m, open(path, "w"), indent=1)
EOF
"$DIME" conformance "$TMP/iv" >"$TMP/copy.out" 2>&1 || fail "renamed copy: $(grep -v '^PASS' "$TMP/copy.out")"
copy=$(passed "$TMP/copy.out")
[ "$copy" = "$orig" ] || fail "renamed copy: passed/failed '$copy', original '$orig'"
grep -q '^PASS renamed-' "$TMP/copy.out" || fail "renamed copy: case ids not taken from the manifest"

# Flip each management-record verdict in turn: that case, and only that one, must now fail.
for n in $(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
print(" ".join(str(i) for i, c in enumerate(m["cases"]) if c["kind"] == "management-record"))
' "$TMP/iv/manifest.json"); do
	cp "$TMP/iv/manifest.json" "$TMP/manifest.keep"
	python3 - "$TMP/iv/manifest.json" "$n" <<'EOF' || fail "flipping case $n"
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
m = json.load(open(path))
c = m["cases"][n]
c["project_expect"] = {"accept": "reject", "reject": "accept"}[c["project_expect"]]
json.dump(m, open(path, "w"), indent=1)
EOF
	expect 1 '' -- "$DIME" conformance "$TMP/iv"
	"$DIME" conformance "$TMP/iv" >"$TMP/flip.out" 2>&1
	id=$(printf 'renamed-%02d:management-record' "$n")
	grep -q "^FAIL $id: got .*, want " "$TMP/flip.out" || fail "flipped $id: no FAIL line for it"
	[ "$(grep -c '^FAIL' "$TMP/flip.out")" = 1 ] || fail "flipped $id: other cases failed too"
	cp "$TMP/manifest.keep" "$TMP/iv/manifest.json"
done

# A probe verdict flipped fails that probe; a case without a verdict fails, not passes.
sed -i '0,/"project": "accept"/s//"project": "reject"/' "$TMP/iv/probes-renamed.json"
expect 1 '^FAIL renamed-[0-9]*:management-record-parse#1: ' -- "$DIME" conformance "$TMP/iv"
mv "$TMP/iv/probes-renamed.json" "$TMP/iv/gone.json"
python3 - "$TMP/iv/manifest.json" <<'EOF' || fail "dropping a verdict"
import json, sys
path = sys.argv[1]
m = json.load(open(path))
next(c for c in m["cases"] if c["kind"] == "management-record").pop("project_expect")
json.dump(m, open(path, "w"), indent=1)
EOF
expect 1 'FAIL renamed-[0-9]*:management-record: manifest has no project_expect' -- "$DIME" conformance "$TMP/iv"
done_tests
