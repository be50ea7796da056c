#!/usr/bin/env bash
# restic-compare.sh: back up the same synthetic fleet history with restic and
# with Fleetvault, and print both repositories' size and time side by side:
# the content alone, and all in (restic's whole repository directory against
# Fleetvault's whole installation directory: catalog with content and
# indexes, resource database, job journal, MBR).
#
# usage: bench/restic-compare.sh [--devices N] [--days D] [--change C] [--keep]
#   FLEETVAULT_BIN=path uses a prebuilt fleetvault instead of building one.
#   defaults: --devices 1000 --days 10 --change 0.01 (restic is slow at 10000 x 30)
#
# The history is `fleetvault bench dedupe --write-files`: one directory per
# day, one file of deterministic CBOR settings per device. restic backs up
# each day's directory under one fixed path (as a nightly backup of a fleet's
# settings directory would), one `restic backup` per day, into a fresh
# repository. Fleetvault ingests the same records through its catalog with
# `fleetvault bench dedupe --json` and the same parameters, into an
# installation kept until the sizes are taken. Each all-in total is given
# twice, measured the same way on both sides: files_bytes (the regular
# files' sizes) and du_bytes (`du -sb`, directories included: restic's
# repository has some 260 directories).
set -euo pipefail

devices=1000 days=10 change=0.01 keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--devices) devices="$2"; shift 2 ;;
	--days) days="$2"; shift 2 ;;
	--change) change="$2"; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	*) echo "restic-compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/restic-compare.XXXXXX")
if [ "$keep" = 1 ]; then echo "keeping $work" >&2; else trap 'rm -rf "$work"' EXIT; fi

if ! command -v restic >/dev/null 2>&1; then
	echo "restic-compare.sh: installing restic (Debian package)" >&2
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq restic >/dev/null
fi

fv="${FLEETVAULT_BIN:-}" # a prebuilt binary, if given
if [ -z "$fv" ]; then
	echo "building fleetvault" >&2
	(cd "$root" && go build -o "$work/fleetvault" ./cmd/fleetvault)
	fv="$work/fleetvault"
fi
params=(--devices "$devices" --days "$days" --change "$change")

echo "writing the fleet history: $devices devices x $days days" >&2
"$fv" bench dedupe "${params[@]}" --write-files "$work/files" --json >"$work/files.json"
raw_bytes=$(jq .bytes "$work/files.json")

export RESTIC_REPOSITORY="$work/repo" RESTIC_PASSWORD_FILE="$work/password" RESTIC_CACHE_DIR="$work/cache"
echo "restic-compare" >"$RESTIC_PASSWORD_FILE"
restic init --quiet >/dev/null

echo "restic: $days backups" >&2
start=$(date +%s.%N)
for dir in "$work"/files/day-*; do
	mv "$dir" "$work/fleet"
	restic backup --quiet --host fleet "$work/fleet" >/dev/null
	mv "$work/fleet" "$dir"
done
restic_seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
restic_snapshots=$(restic snapshots --json | jq length)

# files_bytes sums the sizes of the regular files under a directory.
files_bytes() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }'; }
restic_bytes=$(du -sb "$RESTIC_REPOSITORY" | cut -f1)
restic_files=$(files_bytes "$RESTIC_REPOSITORY")

echo "fleetvault: bench dedupe" >&2
"$fv" bench dedupe "${params[@]}" --json --dir "$work/fleetvault" >"$work/fleetvault.json"
fv_seconds=$(jq .seconds "$work/fleetvault.json")
fv_stored=$(jq .stored_bytes "$work/fleetvault.json")
fv_file=$(jq .file_bytes "$work/fleetvault.json")
records=$(jq .records "$work/fleetvault.json")
fv_du=$(du -sb "$work/fleetvault" | cut -f1)
fv_files=$(files_bytes "$work/fleetvault")

jq -n --argjson devices "$devices" --argjson days "$days" --argjson change "$change" \
	--argjson records "$records" --argjson raw "$raw_bytes" \
	--argjson rs "$restic_seconds" --argjson rb "$restic_bytes" --argjson rsnap "$restic_snapshots" \
	--argjson rf "$restic_files" --argjson fs "$fv_seconds" --argjson fst "$fv_stored" --argjson ff "$fv_file" \
	--argjson fdu "$fv_du" --argjson ffi "$fv_files" \
	--arg rv "$(restic version | cut -d' ' -f2)" '{
	devices: $devices, days: $days, change: $change, records: $records, raw_bytes: $raw,
	restic: {version: $rv, snapshots: $rsnap, repo_bytes: $rb, seconds: $rs, ratio: ($raw / $rb), records_per_s: ($records / $rs),
		all_in: {files_bytes: $rf, du_bytes: $rb}},
	fleetvault: {stored_bytes: $fst, file_bytes: $ff, seconds: $fs, ratio: ($raw / $fst), records_per_s: ($records / $fs),
		all_in: {files_bytes: $ffi, du_bytes: $fdu}},
	restic_repo_over_fleetvault_stored: ($rb / $fst),
	restic_repo_over_fleetvault_file: ($rb / $ff),
	all_in_restic_over_fleetvault: {files_bytes: ($rf / $ffi), du_bytes: ($rb / $fdu)},
	restic_time_over_fleetvault_time: ($rs / $fs)
}'
