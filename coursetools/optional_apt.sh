#!/usr/bin/env bash
# Install an optional Debian package when its program is missing and this machine allows it (apt-get, and root or
# sudo without a password); otherwise say once what is lost and how to get it, and succeed. Used by the Makefile's
# graphviz-deps (chapter 5's diagrams) and browser-deps (the browser test).
#
# Usage: optional_apt.sh PACKAGE PROGRAM WHAT_IS_LOST [required]
#   PROGRAM       a command name (dot) or an absolute path (/usr/bin/chromium) that the package provides
#   WHAT_IS_LOST  the end of the sentence "without PACKAGE, ..." (what the course does instead)
#   required      fail (exit 1) when the package cannot be had: CI, where nothing may be skipped
set -u
package=$1 program=$2 lost=$3 required=${4:-}

have() { command -v "$program" >/dev/null 2>&1; }
have && exit 0

if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    sudo=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
  else
    sudo="-"
  fi
  if [ "$sudo" != "-" ]; then
    echo "installing $package (Debian package): without it, $lost"
    if $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" && have; then
      exit 0
    fi
    echo "could not install $package with apt-get (see above)"
  fi
fi

echo "note: $package is not installed, so $lost; to get it, run \`sudo apt-get install $package\` (Debian/Ubuntu)" \
     "or your system's equivalent, then run make again"
[ "$required" = required ] && { echo "error: $package is required here (CI never skips what it needs)"; exit 1; }
exit 0
