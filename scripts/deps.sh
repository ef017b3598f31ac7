#!/bin/sh
# Install the Debian packages named as arguments that are not installed yet, and only those.
# "a|b" names alternatives: nothing is done when either is installed, else the first is installed.
# Non-interactive; uses sudo when not root. Prints nothing when everything is already there.
set -eu
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=""
for want in "$@"; do
    found=""
    rest=$want
    while [ -n "$rest" ]; do
        pkg=${rest%%|*}
        if [ "$pkg" = "$rest" ]; then rest=""; else rest=${rest#*|}; fi
        if installed "$pkg"; then found=$pkg; break; fi
    done
    [ -n "$found" ] || missing="$missing ${want%%|*}"
done
[ -z "$missing" ] && exit 0
echo "installing missing packages:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "missing Debian packages:$missing" >&2
        echo "run this as root, or install them (apt-get install$missing), or install sudo" >&2
        exit 1
    fi
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
