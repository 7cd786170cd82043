#!/usr/bin/env bash
# The test command: installs whatever is missing (MariaDB, PostgreSQL,
# sysbench, HAProxy, Rust, Python MySQL clients) and runs the whole test
# suite against real servers, which the tests start themselves on free
# loopback ports in temporary directories.
#
# Usage: scripts/test.sh [extra cargo test arguments]
#   e.g. scripts/test.sh --test proxy_basic -- --nocapture
# Exits with cargo's status.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREREQ_NAME=test.sh
# shellcheck source=scripts/install-prereqs.sh
source "$repo/scripts/install-prereqs.sh"
install_prereqs

cd "$repo"
# Debug build: dependencies are optimized (profile.dev.package."*"), the
# crate builds fast; benchmarks use release builds of their own.
exec cargo test "$@"
