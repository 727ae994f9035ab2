#!/bin/sh
# warmline Asterisk entrypoint: render missing config from the default templates, then run Asterisk.
#
# The warmline service owns /etc/asterisk (a volume it shares with this container): it writes
# pjsip_agents.conf and may re-render any file. This script only fills in files that do not exist
# yet, from the templates in $WARMLINE_ASTERISK_DEFAULTS (config/asterisk/ of the repository).
#
#   asterisk-entrypoint seed-config    render missing files and exit
#   asterisk-entrypoint CMD...         render missing files, then exec CMD (default: asterisk -f)
#
# Settings (environment):
#   ARI_PASSWORD (required for a fresh ari.conf), ARI_USER=warmline, ARI_APP=warmline,
#   SIP_PORT=5060, ARI_PORT=8088, RTP_START=10000, RTP_END=10999, MAX_CALLS=500,
#   SIP_BIND=0.0.0.0 (TLS, for agents), SIP_TLS_PORT=5061, PLAIN_SIP_BIND=127.0.0.1 (UDP/TCP SIP:
#   loopback only, or the carrier-facing address), SIP_TLS_CERT / SIP_TLS_KEY (PEM files, mounted),
#   ARI_BIND=0.0.0.0 (inside the compose network only: compose.yaml publishes no ARI port),
#   AMI_SECRET (AMI, manager.conf: off while empty), AMI_USER=warmline, AMI_PORT=5038,
#   AMI_BIND=127.0.0.1, AMI_PERMIT=127.0.0.1/255.255.255.255 (the service's address or network:
#   AMI is used only by the service, to start and stop MixMonitor on nailed calls),
#   WARMLINE_RECORDINGS_DIR=/var/lib/warmline/recordings (must match the service's VAR_DIR/recordings),
#   WARMLINE_ASTERISK_RESEED=1 to overwrite existing files from the templates.
set -eu

DEFAULTS=${WARMLINE_ASTERISK_DEFAULTS:-/usr/share/warmline/asterisk}
ETC=${ASTERISK_ETC_DIR:-/etc/asterisk}

die() {
    echo "asterisk-entrypoint: $*" >&2
    exit 78
}

mod_dir=${ASTERISK_MOD_DIR:-}
if [ -z "$mod_dir" ]; then
    for d in /usr/lib/*/asterisk/modules /usr/lib/asterisk/modules; do
        if [ -e "$d/chan_pjsip.so" ]; then
            mod_dir=$d
            break
        fi
    done
fi
data_dir=${ASTERISK_DATA_DIR:-/usr/share/asterisk}
spool_dir=${ASTERISK_SPOOL_DIR:-/var/spool/asterisk}

# name=value, one a line: every placeholder the templates may use.
vars() {
    cat <<EOF
app=${ARI_APP:-warmline}
ari_user=${ARI_USER:-warmline}
ari_password=${ARI_PASSWORD:-}
ari_host=${ARI_BIND:-0.0.0.0}
ari_port=${ARI_PORT:-8088}
ami_enabled=$(if [ -n "${AMI_SECRET:-}" ]; then echo yes; else echo no; fi)
ami_user=${AMI_USER:-warmline}
ami_secret=${AMI_SECRET:-}
ami_host=${AMI_BIND:-127.0.0.1}
ami_port=${AMI_PORT:-5038}
ami_permit=${AMI_PERMIT:-127.0.0.1/255.255.255.255}
sip_bind=${SIP_BIND:-0.0.0.0}
sip_port=${SIP_PORT:-5060}
plain_sip_bind=${PLAIN_SIP_BIND:-127.0.0.1}
sip_tls_port=${SIP_TLS_PORT:-5061}
tls_cert_file=${SIP_TLS_CERT:-/etc/warmline/tls/fullchain.pem}
tls_key_file=${SIP_TLS_KEY:-/etc/warmline/tls/privkey.pem}
rtp_start=${RTP_START:-10000}
rtp_end=${RTP_END:-10999}
max_calls=${MAX_CALLS:-500}
etc_dir=$ETC
mod_dir=$mod_dir
lib_dir=${ASTERISK_LIB_DIR:-/var/lib/asterisk}
data_dir=$data_dir
sounds_dir=$data_dir/sounds
spool_dir=$spool_dir
voicemail_dir=$spool_dir/voicemail
run_dir=${ASTERISK_RUN_DIR:-/var/run/asterisk}
log_dir=${ASTERISK_LOG_DIR:-/var/log/asterisk}
cache_dir=${ASTERISK_CACHE_DIR:-/var/cache/asterisk}
sbin_dir=${ASTERISK_SBIN_DIR:-/usr/sbin}
recordings_dir=${WARMLINE_RECORDINGS_DIR:-/var/lib/warmline/recordings}
EOF
}

# A sed script replacing {{ name }} by its value (values escaped for sed's replacement text).
sed_script() {
    vars | while IFS= read -r line; do
        name=${line%%=*}
        value=$(printf '%s' "${line#*=}" | sed -e 's/[\\|&]/\\&/g')
        printf 's|{{ *%s *}}|%s|g\n' "$name" "$value"
    done
}

render() {  # render SRC DEST
    src=$1
    dest=$2
    tmp="$dest.tmp.$$"
    sed -f "$script" "$src" >"$tmp"
    if grep -n -e '{{' -e '{%' "$tmp" >"$tmp.left"; then
        echo "asterisk-entrypoint: $src uses placeholders this image does not know:" >&2
        sed 's/^/  line /' "$tmp.left" >&2
        rm -f "$tmp" "$tmp.left"
        die "update docker/asterisk-entrypoint.sh (vars) together with config/asterisk/"
    fi
    rm -f "$tmp.left"
    chmod 0664 "$tmp"
    mv "$tmp" "$dest"
    echo "asterisk-entrypoint: rendered $dest from defaults"
}

seed() {
    case "${ARI_PASSWORD:-}" in
        *CHANGE_ME*) die "ARI_PASSWORD still holds the CHANGE_ME placeholder from docker/env.example" ;;
    esac
    case "${ARI_PASSWORD:-}" in
        *'
'*) die "ARI_PASSWORD must be one line" ;;
    esac
    case "${AMI_SECRET:-}" in
        *CHANGE_ME*) die "AMI_SECRET still holds the CHANGE_ME placeholder from docker/env.example" ;;
        *'
'* | *' '* | *';'*) die "AMI_SECRET must be one word (no spaces or ';')" ;;
    esac
    [ -d "$DEFAULTS" ] || die "no default templates at $DEFAULTS"
    [ -d "$ETC" ] && [ -w "$ETC" ] || die "$ETC is missing or not writable by $(id -un)"
    [ -n "$mod_dir" ] || die "no Asterisk module directory found (set ASTERISK_MOD_DIR)"
    script=$(mktemp)
    sed_script >"$script"
    for src in "$DEFAULTS"/*.conf; do
        [ -e "$src" ] || continue
        dest="$ETC/$(basename "$src")"
        if [ -e "$dest" ] && [ "${WARMLINE_ASTERISK_RESEED:-0}" != "1" ]; then
            continue
        fi
        if [ "$(basename "$src")" = ari.conf ] && [ -z "${ARI_PASSWORD:-}" ]; then
            rm -f "$script"
            die "ARI_PASSWORD is empty and $dest does not exist: set WARMLINE_ARI_PASSWORD in docker/.env"
        fi
        render "$src" "$dest"
    done
    rm -f "$script"
    # pjsip.conf includes the agents' endpoints that the service provisions; start with none.
    [ -e "$ETC/pjsip_agents.conf" ] || : >"$ETC/pjsip_agents.conf"
    [ -e "$ETC/pjsip_blocks.conf" ] || : >"$ETC/pjsip_blocks.conf"
}

# Recordings and config must stay readable and writable for the warmline service (same group).
umask 0002

if [ "${1:-}" = "seed-config" ]; then
    seed
    exit 0
fi

seed
exec "$@"
