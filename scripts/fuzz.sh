#!/bin/sh
# Runs every Fuzz target of the repository for a short time each ($1,
# default 10s), one after the other (the fuzzer uses every core).
#
# Targets are discovered, not listed: every `func FuzzX(` in a *_test.go
# file of any module of the repository (the main module and sdk-wasm).
# Each runs from its own directory, so that its module is the one that
# directory belongs to. A failing input is written under that package's
# testdata/fuzz/FuzzX and fails the run.
#
# One failure is not a finding: Go 1.26's fuzz coordinator can fail a
# target with a bare "context deadline exceeded" when -fuzztime ends while
# a worker is busy (go.dev/issue/75804, fixed in Go 1.27), which short
# runs of slow targets hit on a loaded machine. That is reported and
# skipped when no failing input was written.
set -eu
t="${1:-10s}"
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
found=0
flaked=0
for file in $(grep -rl --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*(' . | grep -v '/testdata/' | sort); do
	dir=$(dirname "$file")
	for f in $(grep -o '^func Fuzz[A-Za-z0-9_]*(' "$file" | sed 's/^func //; s/($//'); do
		echo "== $dir $f"
		corpus="$dir/testdata/fuzz/$f"
		before=$(ls "$corpus" 2>/dev/null | wc -l)
		if (cd "$dir" && go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" .) >"$out" 2>&1; then
			cat "$out"
		else
			cat "$out"
			after=$(ls "$corpus" 2>/dev/null | wc -l)
			if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$out" &&
				! grep -q -e 'Failing input written' -e 'panic:' "$out"; then
				echo "== $dir $f: fuzz coordinator deadline race (go.dev/issue/75804), no failing input: not a finding"
				flaked=$((flaked + 1))
			else
				echo "== $dir $f FAILED"
				exit 1
			fi
		fi
		found=$((found + 1))
	done
done
echo "== $found fuzz targets run ($t each), $flaked cut short by the deadline race"
