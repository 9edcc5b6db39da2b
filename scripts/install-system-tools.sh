#!/usr/bin/env bash
# Installs the independent checkers the test suite runs (Debian packages), only where missing.
set -euo pipefail
declare -A need=(
  [openssl]=openssl
  [pdfsig]=poppler-utils
  [pdftoppm]=poppler-utils
  [certutil]=libnss3-tools
  [qpdf]=qpdf
  [chromium]=chromium
  [curl]=curl
  [wrk]=wrk  # the benchmarks' load generator (make bench)
  [nginx]=nginx  # the shipped reverse-proxy config, run in front of ecert (tests/ecert/test_proxy.py)
)
missing=()
for tool in "${!need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
# the Adobe-GB1 character maps, so poppler (pdftotext, pdftoppm) reads the licences' Chinese text (STSong-Light, not embedded)
[ -d /usr/share/poppler/cMap/Adobe-GB1 ] || missing+=(poppler-data)
# a CJK font, so headless Chromium draws the Chinese verification page (screenshots) instead of boxes
command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q . || missing+=(fonts-wqy-microhei)
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "installing system tools: $packages"
sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_ apt-get update -qq
# shellcheck disable=SC2086
$sudo_ apt-get install -y -qq --no-install-recommends $packages >/dev/null
