#!/usr/bin/env bash
# bench/podman.sh — `sbx up` / `sbx down` of one sandbox (ns driver, warm store) side by side
# with `podman run -d` / `podman rm -f` of the same busybox image (Debian's podman).
#
#   sudo bash bench/podman.sh              # from anywhere; needs root, Go and Debian's apt
#
# Environment:
#   N=10            timed runs of each command (plus one warm-up run)
#   SBX=path        use this sbx binary instead of building one (`make build` → bin/sbx)
#   SBX_SCOPE=public   the sandbox's network scope: public (default; like podman's default
#                   bridge: its own netns, reachable from the host, outbound allowed) | any | none
#   PODMAN_INIT=1   run podman with --init (catatonit as PID 1, as sbx has its own init); with 0
#                   httpd is PID 1, ignores SIGTERM and `podman rm -f` waits its 10 s stop timeout
#   BENCH_TOOL=hyperfine|loop   hyperfine (default when installable) or a date +%s%N loop
#   NO_PODMAN=1     measure sbx only
#   SBX_BEFORE=path another sbx binary (e.g. built from an older commit) timed the same way,
#                   for a before/after comparison in one run on one machine
#   BASE=rev        also time the ns driver's bare start-up (runtime/ns BenchmarkStartStop: a
#                   sandbox that runs `true`) as of git revision rev, beside the working tree's
#   NO_BARE=1       skip the bare start-up figures (the ns benchmark and `podman run --rm true`)
#
# Both sides are timed to the same criterion: the published port on 127.0.0.1 answers an HTTP
# request (busybox httpd's 404 counts). `sbx up` returns once its ready probe passed; that figure
# is printed too. All traffic stays on 127.0.0.1; nothing is pulled from a registry.
set -euo pipefail

N=${N:-10}
SBX_SCOPE=${SBX_SCOPE:-public}
PODMAN_INIT=${PODMAN_INIT:-1}
NO_PODMAN=${NO_PODMAN:-0}
NO_BARE=${NO_BARE:-0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s\n' "bench: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (the ns driver and rootful podman need it)"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"

# --- packages -------------------------------------------------------------------------------
apt_updated=0
apt_install() {
	if [[ $apt_updated == 0 ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
[[ -x /bin/busybox ]] || apt_install busybox-static
if [[ $NO_PODMAN != 1 ]] && ! { command -v podman && command -v runc; } >/dev/null; then
	apt_install podman runc
fi
if [[ ${BENCH_TOOL:-} != loop ]] && ! command -v hyperfine >/dev/null; then
	apt_install hyperfine || log "hyperfine could not be installed: timing with a shell loop"
fi
if [[ -z ${BENCH_TOOL:-} ]]; then
	if command -v hyperfine >/dev/null; then BENCH_TOOL=hyperfine; else BENCH_TOOL=loop; fi
fi
[[ $BENCH_TOOL == hyperfine || $BENCH_TOOL == loop ]] || die "BENCH_TOOL must be hyperfine or loop"

# --- scratch space and clean-up -------------------------------------------------------------
TMP=$(mktemp -d /tmp/sbx-bench-podman.XXXXXX)
PROJ=$TMP/proj
export SBX_HOME=$TMP/home
CTR=sbx-bench-$$
TAG=localhost/sbx-bench-busybox:run$$
podman_ready=0

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n ${SBX_BIN:-} && -d $PROJ/.sbx ]]; then
		"$SBX_BIN" --no-color -C "$PROJ" down --purge >/dev/null 2>&1 || log "cleanup: sbx down failed"
	fi
	if [[ $podman_ready == 1 ]]; then
		podman rm -f -t 0 --ignore "$CTR" >/dev/null 2>&1 || true
		podman rmi "$TAG" >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a TCP port that nothing listens on at 127.0.0.1.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 30000))
		if ! ss -Hltn "sport = :$p" | grep -q .; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# wait-http PORT: polls 127.0.0.1:PORT until an HTTP response comes back (any status), for at
# most 15 s. A bare TCP connect is not enough: sbx publishes ports through a host-side proxy
# that accepts before the guest listens.
cat >"$TMP/wait-http" <<'EOF'
#!/usr/bin/env bash
port=$1 deadline=$((SECONDS + 15))
exec 4>&2 2>/dev/null # bash reports each refused connect
trap '' PIPE          # a write to a connection closed early must fail, not kill the poll
while ((SECONDS < deadline)); do
	if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
		printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 2>/dev/null
		line=
		IFS= read -r -t 1 line <&3 || true
		exec 3<&- 3>&-
		[[ $line == HTTP/* ]] && exit 0
	fi
	sleep 0.002
done
echo "wait-http: 127.0.0.1:$port did not answer within 15 s" >&4
exit 1
EOF
chmod +x "$TMP/wait-http"
WAIT=$TMP/wait-http

# --- sbx, the image, the project ------------------------------------------------------------
if [[ -n ${SBX:-} ]]; then
	SBX_BIN=$SBX
else
	log "building sbx (make build)"
	make -s -C "$ROOT" build >&2
	SBX_BIN=$ROOT/bin/sbx
fi
[[ -x $SBX_BIN ]] || die "no sbx binary at $SBX_BIN"
SBX_BIN=$(cd "$(dirname "$SBX_BIN")" && pwd)/$(basename "$SBX_BIN")

log "building the busybox OCI layout"
(cd "$ROOT" && go run ./examples/hello/mkimage -out "$TMP/image") >&2

SBX_PORT=$(free_port)
mkdir -p "$PROJ" "$SBX_HOME"
cat >"$PROJ/Sandboxfile" <<EOF
project {
  name   = "bench-podman"
  driver = "ns"
}

sandbox "web" {
  image   = "oci-layout:$TMP/image:latest"
  command = ["httpd", "-f", "-p", "8080"]

  port {
    host  = $SBX_PORT
    guest = 8080
  }

  network {
    scope = "$SBX_SCOPE"
  }

  ready {
    tcp = 8080
  }
}
EOF
SBX_CMD="$(printf '%q' "$SBX_BIN") --no-color -C $(printf '%q' "$PROJ")"
$SBX_CMD validate >&2
log "warming the store (sbx pull)"
$SBX_CMD pull >/dev/null

# --- podman: the same image -----------------------------------------------------------------
# `podman pull oci:DIR:latest` cannot read mkimage's layout: its index lists a Docker v2 manifest
# (application/vnd.docker.distribution.manifest.v2+json), which Debian 12's podman 4.3 skips
# ("no descriptor found for reference"). So the same blobs are repacked as a docker-archive
# (what `docker save` writes), which `podman load` reads; the image ID is the same config digest.
docker_archive() { # LAYOUT OUT.tar REPOTAG
	local layout=$1 out=$2 tag=$3 dir m cfg layers="" d
	dir=$(mktemp -d "$TMP/archive.XXXXXX")
	m=$(grep -o '"digest": *"sha256:[0-9a-f]\{64\}"' "$layout/index.json" | head -1 | grep -o '[0-9a-f]\{64\}')
	m=$layout/blobs/sha256/$m
	cfg=$(grep -o '"config": *{[^}]*}' "$m" | grep -o '[0-9a-f]\{64\}')
	cp "$layout/blobs/sha256/$cfg" "$dir/$cfg.json"
	while read -r d; do
		cp "$layout/blobs/sha256/$d" "$dir/$d.tar"
		layers+="${layers:+,}\"$d.tar\""
	done < <(grep -o '"layers": *\[.*\]' "$m" | grep -o 'sha256:[0-9a-f]\{64\}' | cut -d: -f2)
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]\n' "$cfg" "$tag" "$layers" >"$dir/manifest.json"
	tar -C "$dir" -cf "$out" .
	rm -rf "$dir"
}

PODMAN_PORT=
PODMAN_RUN=
if [[ $NO_PODMAN != 1 ]]; then
	log "loading the image into podman"
	docker_archive "$TMP/image" "$TMP/image.tar" "$TAG"
	podman_ready=1
	podman load -q -i "$TMP/image.tar" >&2
	PODMAN_PORT=$(free_port)
	init=
	[[ $PODMAN_INIT == 1 ]] && init=--init
	PODMAN_RUN="podman run -d --pull never --name $CTR --runtime runc $init \
--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -p 127.0.0.1:$PODMAN_PORT:8080 \
$TAG httpd -f -p 8080 >/dev/null"
	# One run outside the timings: it fails here, with podman's own error, if podman cannot
	# run on this machine; sbx's figures are still measured and printed.
	if ! out=$(eval "$PODMAN_RUN" 2>&1) || ! out=$("$WAIT" "$PODMAN_PORT" 2>&1); then
		log "podman cannot run the container on this machine:"
		printf '%s\n' "$out" | sed 's/^/    /' >&2
		NO_PODMAN=1
	fi
	podman rm -f -t 0 --ignore "$CTR" >/dev/null 2>&1 || true
fi

# --- timing ---------------------------------------------------------------------------------
# bench NAME PREPARE COMMAND: times COMMAND N times (after one warm-up), PREPARE before each;
# appends "NAME<TAB>median_ms<TAB>min_ms<TAB>max_ms" to $TMP/results.
: >"$TMP/results"
bench() {
	local name=$1 prepare=$2 cmd=$3
	log "timing: $name"
	if [[ $BENCH_TOOL == hyperfine ]]; then
		hyperfine --runs "$N" --warmup 1 --style none --prepare "$prepare" \
			--export-csv "$TMP/hf.csv" "$cmd" >/dev/null
		# command,mean,stddev,median,user,system,min,max — in seconds; the command may hold commas
		awk -F, -v name="$name" 'NR == 2 { printf "%s\t%.1f\t%.1f\t%.1f\n", name, $(NF-4)*1000, $(NF-1)*1000, $NF*1000 }' \
			"$TMP/hf.csv" >>"$TMP/results"
	else
		local i t0 t1 times=()
		for ((i = 0; i <= N; i++)); do
			eval "$prepare" >/dev/null
			t0=$(date +%s%N)
			eval "$cmd" >/dev/null
			t1=$(date +%s%N)
			((i > 0)) && times+=($(((t1 - t0) / 1000)))
		done
		printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" '
			{ v[NR] = $1 }
			END {
				med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
				printf "%s\t%.1f\t%.1f\t%.1f\n", name, med / 1000, v[1] / 1000, v[NR] / 1000
			}' >>"$TMP/results"
	fi
}

SBX_DOWN="$SBX_CMD down >/dev/null"
SBX_UP="$SBX_CMD up >/dev/null"
bench "sbx up (returns)" "$SBX_DOWN" "$SBX_UP"
bench "sbx up -> answers" "$SBX_DOWN" "$SBX_UP && $WAIT $SBX_PORT"
bench "sbx down" "$SBX_DOWN; $SBX_UP && $WAIT $SBX_PORT" "$SBX_DOWN"
if [[ -n ${SBX_BEFORE:-} ]]; then
	[[ -x $SBX_BEFORE ]] || die "SBX_BEFORE=$SBX_BEFORE is not an executable"
	eval "$SBX_DOWN"
	BEFORE_CMD="$(printf '%q' "$SBX_BEFORE") --no-color -C $(printf '%q' "$PROJ")"
	bench "sbx(before) up (returns)" "$BEFORE_CMD down >/dev/null" "$BEFORE_CMD up >/dev/null"
	bench "sbx(before) up -> answers" "$BEFORE_CMD down >/dev/null" "$BEFORE_CMD up >/dev/null && $WAIT $SBX_PORT"
	bench "sbx(before) down" "$BEFORE_CMD down >/dev/null; $BEFORE_CMD up >/dev/null && $WAIT $SBX_PORT" "$BEFORE_CMD down >/dev/null"
	eval "$BEFORE_CMD down >/dev/null"
fi
if [[ $NO_PODMAN != 1 ]]; then
	PODMAN_RM="podman rm -f $CTR >/dev/null"
	PODMAN_CLEAN="podman rm -f -t 0 --ignore $CTR >/dev/null"
	bench "podman run -d (returns)" "$PODMAN_CLEAN" "$PODMAN_RUN"
	bench "podman run -d -> answers" "$PODMAN_CLEAN" "$PODMAN_RUN && $WAIT $PODMAN_PORT"
	bench "podman rm -f" "$PODMAN_CLEAN; $PODMAN_RUN && $WAIT $PODMAN_PORT" "$PODMAN_RM"
	eval "$PODMAN_CLEAN"
fi
eval "$SBX_DOWN"

# --- bare start-up: a sandbox that runs `true` -------------------------------------------------
# The ns driver's own start (namespaces, cgroups, overlay, /dev, seccomp, init; no network, no
# image store) from its Go benchmark, which also reports CPU time per start (steadier than wall
# time on a busy machine), beside `podman run --rm` of `true` on a rootfs directory.
# nsbench DIR LABEL: runs runtime/ns's BenchmarkStartStop in the tree at DIR; the CPU time is the
# benchmark process's and its children's (user + system) over the starts it made (N*10, plus
# one warm-up), so trees whose benchmark lacks a CPU metric are measured alike.
nsbench() {
	local dir=$1 label=$2 line runs=$((N * 10)) cpu
	(cd "$dir" && go test -c -o "$TMP/ns.test" ./runtime/ns/) >&2 || { log "cannot build runtime/ns's test in $dir"; return; }
	log "timing: $label"
	cpu=$( { TIMEFORMAT='%3U %3S'; time "$TMP/ns.test" -test.run '^$' -test.bench '^BenchmarkStartStop$' \
		-test.benchtime "${runs}x" >"$TMP/ns.out" 2>&1; } 2>&1)
	line=$(grep '^BenchmarkStartStop' "$TMP/ns.out") || { log "the benchmark failed in $dir:"; cat "$TMP/ns.out" >&2; return; }
	awk -v name="$label" -v cpu="$cpu" -v runs="$runs" '{ split(cpu, c, " ")
		printf "%s\t%.2f\t%.2f\n", name, $3 / 1e6, (c[1] + c[2]) * 1000 / (runs + 1) }' <<<"$line" >>"$TMP/bare"
}
: >"$TMP/bare"
if [[ $NO_BARE != 1 ]]; then
	nsbench "$ROOT" "ns start+wait (this tree)"
	if [[ -n ${BASE:-} ]]; then
		mkdir -p "$TMP/base"
		git -C "$ROOT" archive "$BASE" | tar -x -C "$TMP/base"
		nsbench "$TMP/base" "ns start+wait ($BASE)"
	fi
	if [[ $NO_PODMAN != 1 ]]; then
		mkdir -p "$TMP/rootfs/bin"
		cp /bin/busybox "$TMP/rootfs/bin/busybox"
		ln -s busybox "$TMP/rootfs/bin/true"
		PODMAN_TRUE="podman --runtime runc run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --rootfs $TMP/rootfs /bin/true"
		bench "podman run --rm true" ":" "$PODMAN_TRUE"
	fi
fi

# --- report ---------------------------------------------------------------------------------
get() { awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$TMP/results"; }
echo
if [[ $NO_PODMAN == 1 ]]; then
	other="podman: not measured"
else
	other="$(podman --version) (runc${init:+, $init})"
fi
echo "$("$SBX_BIN" version 2>/dev/null | head -1) (ns driver, scope $SBX_SCOPE) vs $other;" \
	"N=$N, $BENCH_TOOL, $(nproc) CPUs"
printf '%-28s %10s %10s %10s\n' "" "median ms" "min ms" "max ms"
while IFS=$'\t' read -r name med min max; do
	printf '%-28s %10s %10s %10s\n' "$name" "$med" "$min" "$max"
done <"$TMP/results"
if [[ -s $TMP/bare ]]; then
	echo
	printf '%-28s %10s %10s\n' "bare start-up (runs true)" "mean ms" "cpu ms/op"
	while IFS=$'\t' read -r name ms cpu; do
		printf '%-28s %10s %10s\n' "$name" "$ms" "$cpu"
	done <"$TMP/bare"
	[[ -z $(get "podman run --rm true" 2) ]] || echo "(podman run --rm true: see the table above)"
fi
if [[ $NO_PODMAN != 1 ]]; then
	echo
	printf '%-28s %10s %10s\n' "ratio sbx / podman" "median" "min"
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3g", a / b }'; }
	for pair in "up -> answers|sbx up -> answers|podman run -d -> answers" "down|sbx down|podman rm -f"; do
		IFS='|' read -r label s p <<<"$pair"
		printf '%-28s %10s %10s\n' "$label" \
			"$(ratio "$(get "$s" 2)" "$(get "$p" 2)")" "$(ratio "$(get "$s" 3)" "$(get "$p" 3)")"
	done
	slower=$(awk -F'\t' '
		$1 == "sbx up -> answers" { su = $2 } $1 == "podman run -d -> answers" { pu = $2 }
		$1 == "sbx down" { sd = $2 } $1 == "podman rm -f" { pd = $2 }
		END { print (su > pu || sd > pd) ? "no" : "yes" }' "$TMP/results")
	echo "target (sbx at most as slow as podman, medians): $slower"
fi
