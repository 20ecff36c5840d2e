#!/usr/bin/env bash
# Installs the Debian packages colloq needs to build and test (run as root on Debian 12).
# Skips apt entirely when everything is already present.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libjansson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
      python3 python3-numpy python3-jinja2 python3-sentencepiece
      tmux curl
      prometheus)            # promtool checks the server's /metrics output in the tests
# node + npm run the server tests (npm `openai` client) and bench/serve-load; Debian's
# packages only when no node is installed already.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
