#!/usr/bin/env bash
# The benchmark drives HTTP load with wrk (Debian package). Installs it when missing.
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends wrk
