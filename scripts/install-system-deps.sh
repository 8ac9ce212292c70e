#!/usr/bin/env bash
# What the tests and the demo need from the system: Node.js for Bookinfo's ratings service
# (Debian's `nodejs`, when no `node` is on PATH), and headless Chromium and its WebDriver for the
# browser test (tests/e2e/test_browser.py) and the README's screenshot (docs/productpage.png):
# Debian's `chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver). No test
# tool downloads a browser of its own.
#
# Idempotent: exits 0 at once when both are present; otherwise installs them quietly with
# apt-get (as root, or through sudo; no recommends: the test runs Chromium with --no-sandbox),
# refreshing the package lists only when apt-get can't find them (a fresh machine has none).
set -euo pipefail

PACKAGES=(chromium chromium-driver)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v node >/dev/null || missing+=(nodejs)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "install-system-deps.sh: no apt-get; install ${missing[*]} by hand" >&2
    exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-system-deps.sh: needs root (or sudo) for apt-get" >&2; exit 1; }
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
install() {
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
echo "install-system-deps.sh: installing ${missing[*]}" >&2
if ! install 2>/dev/null; then
    "${SUDO[@]}" apt-get update -qq >/dev/null
    install
fi
/usr/bin/chromium --version >&2 2>/dev/null  # (its launcher script can warn about /dev/shm)
