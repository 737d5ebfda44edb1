#!/usr/bin/env bash
# Install the non-Python tools that the tests and docs use:
#   - Node.js and npm (Debian's packages, only where `node` is missing);
#   - the npm packages pinned in tools/web/package-lock.json (mermaid, jsdom, katex, ...);
#   - Debian's chromium, where it is missing (docs tests).
# Re-running is cheap: `npm ci` is skipped while node_modules matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

stamp=tools/web/node_modules/.lucid-lock.sha256
want=$(sha256sum tools/web/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  (cd tools/web && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

# Debian's Chromium, for the documentation tests that open the built pages in a real browser
# (no tool downloads a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
