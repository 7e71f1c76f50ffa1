#!/bin/sh
# Every tracked C, C++ and header file must be exactly what .clang-format makes of it
# (STYLE.md §7). Uses clang-format 14, the version .clang-format is written for; set
# CLANG_FORMAT to use another binary. Nothing is excluded: tables that must keep a hand layout
# carry /* clang-format off */ ... /* clang-format on */ around them instead.
set -eu
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
	for c in clang-format-14 clang-format; do
		if command -v "$c" >/dev/null 2>&1; then
			cf=$c
			break
		fi
	done
fi
if [ -z "$cf" ]; then
	echo "check-format: clang-format not found (install clang-format-14)" >&2
	exit 2
fi
case "$("$cf" --version)" in
*"version 14."*) ;;
*) echo "check-format: warning: $("$cf" --version) is not clang-format 14; results may differ" >&2 ;;
esac
cd "$top"
n=$(git ls-files -z -- '*.c' '*.h' '*.cc' | tr -cd '\0' | wc -c)
if git ls-files -z -- '*.c' '*.h' '*.cc' | xargs -0 -r "$cf" --dry-run -Werror --style=file; then
	echo "format ok ($n files)"
else
	echo "check-format: the files above are not formatted; run:" >&2
	echo "  git ls-files -z -- '*.c' '*.h' '*.cc' | xargs -0 $cf -i" >&2
	exit 1
fi
