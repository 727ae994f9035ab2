#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages warmline needs, only those missing; fast when all are there.
# Usage: scripts/install-system.sh [test]   ("test" adds what only the test suite needs)
set -euo pipefail

want=(python3-venv espeak-ng sox libsndfile1 libportaudio2 mosquitto postgresql debootstrap)
[ "${1:-}" = "test" ] && want+=(chromium baresip sip-tester xvfb xdotool x11-utils)

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# python3-venv is moot where the chosen Python already has venv (e.g. pyenv builds).
if [ ${#missing[@]} -gt 0 ] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
  read -r -a missing <<< "${missing[*]}"
fi
[ ${#missing[@]} -eq 0 ] && { echo "system packages: all present"; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
