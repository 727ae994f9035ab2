#!/usr/bin/env bash
# Make an Asterisk 22 available to warmline's lab; idempotent and unattended.
#
# Order of preference:
#   1. WARMLINE_ASTERISK_ROOT, or an existing sid root (/var/cache/warmline/sid-root as root,
#      ./.cache/sid-root otherwise) that has usr/sbin/asterisk: nothing to do;
#   2. an `asterisk` already on PATH;
#   3. on Ubuntu, the distribution's package (universe);
#   4. a Debian sid root built with debootstrap (Debian 12 has no asterisk package), built in
#      DIR.tmp and renamed to DIR when complete, so a half-built root is never used.
# Finally the silence/N sounds AMD-driven callees need are generated with sox (Debian ships none).
# Prints how the chosen Asterisk will be run.
set -euo pipefail

SUITE=${WARMLINE_DEBIAN_SUITE:-sid}
MIRROR=${WARMLINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=asterisk,asterisk-modules,asterisk-core-sounds-en

log() { printf 'install-asterisk: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
    DEFAULT_ROOT=/var/cache/warmline/sid-root
else
    DEFAULT_ROOT="$(pwd)/.cache/sid-root"
fi
ROOT=${WARMLINE_ASTERISK_ROOT:-$DEFAULT_ROOT}

arch_paths() {  # sets LOADER and TRIPLET for this machine
    case "$(uname -m)" in
        x86_64) LOADER=lib64/ld-linux-x86-64.so.2; TRIPLET=x86_64-linux-gnu ;;
        aarch64) LOADER=lib/ld-linux-aarch64.so.1; TRIPLET=aarch64-linux-gnu ;;
        *) die "unsupported machine $(uname -m)" ;;
    esac
}

apt_install() {
    [ "$(id -u)" -eq 0 ] || die "installing $* needs root (or set WARMLINE_ASTERISK_ROOT)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; }
}

make_silence() {  # $1: a sounds folder; writes silence/1..10.wav if missing
    local dir=$1/silence n
    # The lab makes its own copies too; a root we may not write to is not an error.
    { [ -w "$1" ] || { [ ! -e "$1" ] && [ -w "$(dirname "$1")" ]; }; } || return 0
    command -v sox >/dev/null || { log "sox missing; installing"; apt_install sox; }
    mkdir -p "$dir"
    for n in 1 2 3 4 5 6 7 8 9 10; do
        [ -e "$dir/$n.wav" ] || [ -e "$dir/$n.gsm" ] || [ -e "$dir/$n.ulaw" ] \
            || sox -n -r 8000 -c 1 -b 16 "$dir/$n.wav" trim 0 "$n"
    done
}

report_root() {
    arch_paths
    "$1/$LOADER" --library-path "$1/usr/lib/$TRIPLET:$1/lib/$TRIPLET" "$1/usr/sbin/asterisk" -V >&2 \
        || die "$1 has an asterisk that does not run"
    echo "asterisk: $1/$LOADER --library-path $1/usr/lib/$TRIPLET:$1/lib/$TRIPLET $1/usr/sbin/asterisk"
}

root_ready() { [ -x "$1/usr/sbin/asterisk" ]; }

# One build at a time: `make demo` and `make test` started together would otherwise both debootstrap
# into the same DIR.tmp and one would delete the other's half-built root. The second waits, then
# finds the root ready.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9

# 1. an existing root (without WARMLINE_ASTERISK_ROOT, either default place will do)
CANDIDATES=("$ROOT")
[ -z "${WARMLINE_ASTERISK_ROOT:-}" ] && CANDIDATES+=(/var/cache/warmline/sid-root "$(pwd)/.cache/sid-root")
for candidate in "${CANDIDATES[@]}"; do
    if root_ready "$candidate"; then
        log "using existing root $candidate"
        make_silence "$candidate/usr/share/asterisk/sounds/en_US_f_Allison"
        report_root "$candidate"
        exit 0
    fi
done
[ -n "${WARMLINE_ASTERISK_ROOT:-}" ] && log "WARMLINE_ASTERISK_ROOT=$ROOT has no asterisk yet; building it"

# 2. an asterisk on PATH
if [ -z "${WARMLINE_ASTERISK_ROOT:-}" ] && command -v asterisk >/dev/null; then
    log "using the asterisk on PATH: $(command -v asterisk)"
    asterisk -V >&2 || true
    echo "asterisk: $(command -v asterisk)"
    exit 0
fi

# 3. Ubuntu's package
if [ -z "${WARMLINE_ASTERISK_ROOT:-}" ] && grep -qi '^ID=ubuntu' /etc/os-release 2>/dev/null; then
    log "installing Ubuntu's asterisk package"
    apt_install asterisk asterisk-modules asterisk-core-sounds-en sox
    systemctl disable --now asterisk >/dev/null 2>&1 || true  # the lab runs its own instance
    make_silence /usr/share/asterisk/sounds/en
    echo "asterisk: $(command -v asterisk)"
    exit 0
fi

# 4. a Debian sid root
command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root; run this script with sudo, or set WARMLINE_ASTERISK_ROOT"
TMP="$ROOT.tmp"
rm -rf "$TMP"
mkdir -p "$(dirname "$ROOT")"
log "building a Debian $SUITE root in $TMP (about a minute)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$TMP" "$MIRROR" >&2
root_ready "$TMP" || die "debootstrap finished but $TMP has no usr/sbin/asterisk"
make_silence "$TMP/usr/share/asterisk/sounds/en_US_f_Allison"
mv "$TMP" "$ROOT"
log "root ready: $ROOT"
report_root "$ROOT"
