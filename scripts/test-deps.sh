#!/bin/sh
# Installs what the tests need: Go modules, and Debian packages for the real
# Kafka clients (kafka-python on Debian's Python 3.11, kcat) when missing and
# running as root. Outside root it only reports what is missing; the tests
# that need a missing tool skip loudly, or fail when CI=true.
set -eu
go mod download
need=""
/usr/bin/python3 -c 'import kafka' >/dev/null 2>&1 || need="$need python3-kafka"
/usr/bin/python3 -c 'import snappy, lz4, zstandard' >/dev/null 2>&1 || need="$need python3-snappy python3-lz4 python3-zstandard"
command -v kcat >/dev/null 2>&1 || need="$need kcat"
if [ -z "$need" ]; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $need >/dev/null
else
	echo "test-deps: missing$need (run as root to install them with apt-get); tests needing them will skip" >&2
fi
