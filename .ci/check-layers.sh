#!/bin/sh
# engine/ and simd/ must not do I/O, start threads or log (STYLE.md §1).
top=${1:-.}
bad=$(grep -rnE '#include <(liburing|pthread|stdio|syslog)\.h>' "$top/engine" "$top/simd" 2>/dev/null)
if [ -n "$bad" ]; then
	echo "layer violation:"
	echo "$bad"
	exit 1
fi
# io/ knows nothing of DIME formats.
bad=$(grep -rnE '#include "dime/(signet|keys|mrec|msg)\.h"' "$top/io" 2>/dev/null)
if [ -n "$bad" ]; then
	echo "io/ includes DIME headers:"
	echo "$bad"
	exit 1
fi
echo "layers ok"
