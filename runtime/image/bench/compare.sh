#!/usr/bin/env bash
# compare.sh times sbx's image pull (download, verify, unpack) against
# skopeo copy + umoci unpack, on the same ~200 MiB, 5-layer image served
# by an in-process registry on loopback. It prints wall time and peak RSS
# of each run (GNU time), cold and warm.
#
#   runtime/image/bench/compare.sh          # RUNS=3 by default
#   RUNS=5 WORK=/var/tmp runtime/image/bench/compare.sh
#
# Needs: go, skopeo, umoci, /usr/bin/time (Debian: apt-get install -y
# skopeo umoci time). umoci runs with --rootless when not root.
set -euo pipefail
cd "$(dirname "$0")/../../.."

for tool in skopeo umoci /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "compare.sh: $tool not found: apt-get install -y skopeo umoci time" >&2; exit 1; }
done

runs=${RUNS:-3}
work=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/sbx-bench.XXXXXX")
srv=
cleanup() {
	[ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null || true
	chmod -R u+rwx "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/bench" ./runtime/image/bench
"$work/bench" serve -addr 127.0.0.1:0 >"$work/ref" &
srv=$!
for _ in $(seq 600); do [ -s "$work/ref" ] && break; sleep 0.1; done
[ -s "$work/ref" ] || { echo "compare.sh: the registry did not start" >&2; exit 1; }
ref=$(cat "$work/ref")
echo "image: $ref ($runs runs each)"

rootless=
[ "$(id -u)" -eq 0 ] || rootless=--rootless
fmt='%e s  %M KiB peak RSS'

timed() { # LABEL CMD...
	local label=$1; shift
	sync
	/usr/bin/time -f "$fmt" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
	printf '%-28s %s\n' "$label" "$(cat "$work/time")"
}

for i in $(seq "$runs"); do
	rm -rf "$work/sbx"
	timed "sbx pull (cold) #$i" "$work/bench" pull -root "$work/sbx" "$ref"
	timed "sbx pull (warm) #$i" "$work/bench" pull -root "$work/sbx" "$ref"
	chmod -R u+rwx "$work/oci" "$work/bundle" 2>/dev/null || true
	rm -rf "$work/oci" "$work/bundle"
	timed "skopeo+umoci (cold) #$i" sh -c "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$ref oci:$work/oci:bench && umoci unpack $rootless --image $work/oci:bench $work/bundle"
done
