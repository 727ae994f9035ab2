#!/usr/bin/env bash
# Installs warmline's softphone for this Linux user, in one command:
#   bash install.sh [--server URL] [--wheel FILE] [--autostart | --no-autostart]
# It makes its own virtualenv (~/.local/share/warmline/softphone-venv), installs the softphone wheel
# (the newest warmline_softphone-*.whl beside this script unless --wheel), asks for the server's
# address once and keeps it in ~/.config/warmline/softphone.toml, puts `warmline-softphone` in
# ~/.local/bin, and, if wanted, starts it at login (~/.config/autostart). Nothing needs root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="" wheel="" autostart="ask"
while [ $# -gt 0 ]; do
  case "$1" in
    --server) server="$2"; shift 2 ;;
    --wheel) wheel="$2"; shift 2 ;;
    --autostart) autostart=yes; shift ;;
    --no-autostart) autostart=no; shift ;;
    *) echo "unknown option $1 (use --server URL, --wheel FILE, --autostart or --no-autostart)" >&2; exit 2 ;;
  esac
done

python=""
for p in python3.12 python3.11 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import sys, venv; sys.exit(sys.version_info[:2] not in ((3,11),(3,12)))' 2>/dev/null; then
    python="$p"; break
  fi
done
[ -n "$python" ] || { echo "需要 Python 3.11 或 3.12 / Python 3.11 or 3.12 (with venv) is needed" >&2; exit 1; }

if [ -z "$wheel" ]; then
  wheel="$(ls -t "$here"/warmline_softphone-*.whl 2>/dev/null | head -n 1 || true)"
fi
[ -f "$wheel" ] || { echo "没有找到软电话安装包 / no warmline_softphone-*.whl beside this script (or give --wheel FILE)" >&2; exit 1; }

if [ -z "$server" ]; then
  [ -t 0 ] || { echo "give --server URL (no terminal to ask on)" >&2; exit 2; }
  read -r -p "服务器地址 / Server address (https://…): " server
fi
case "$server" in
  http://*|https://*) ;;
  *) echo "服务器地址应以 https:// 开头 / the server address starts with https:// ($server)" >&2; exit 2 ;;
esac

data="${XDG_DATA_HOME:-$HOME/.local/share}/warmline"
venv="$data/softphone-venv"
mkdir -p "$data"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade "$wheel"

config_dir="${XDG_CONFIG_HOME:-$HOME/.config}/warmline"
config="$config_dir/softphone.toml"
mkdir -p "$config_dir"
{ printf 'server = "%s"\n' "$server"; [ -f "$config" ] && grep -v '^[[:space:]]*server[[:space:]]*=' "$config" || true; } > "$config.new"
mv "$config.new" "$config"

mkdir -p "$HOME/.local/bin"
ln -sf "$venv/bin/warmline-softphone" "$HOME/.local/bin/warmline-softphone"

if [ "$autostart" = ask ] && [ -t 0 ]; then
  read -r -p "登录时自动启动软电话？/ Start the softphone at login? [y/N] " answer
  case "$answer" in [yY]*) autostart=yes ;; *) autostart=no ;; esac
fi
if [ "$autostart" = yes ]; then
  mkdir -p "${XDG_CONFIG_HOME:-$HOME/.config}/autostart"
  cat > "${XDG_CONFIG_HOME:-$HOME/.config}/autostart/warmline-softphone.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=warmline softphone
Name[zh_CN]=warmline 软电话
Exec=$venv/bin/warmline-softphone --open-page
Terminal=true
DESKTOP
fi
echo "installed: $venv/bin/warmline-softphone (server $server, settings $config)"
echo "start it with: warmline-softphone --open-page"
