#!/usr/bin/env bash
# Install the TypeScript tools of tests/test_client_typescript.py (openapi-typescript,
# TypeScript, openapi-fetch, pinned in tests/typescript/package-lock.json) into
# tests/typescript/node_modules, with node and npm from Debian's packages when missing.
# Idempotent; does nothing when the installed tools match the lock file. (The Python client
# generator, openapi-python-client, is a pip test extra: scripts/install.sh --test.)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v npm >/dev/null 2>&1; then
  echo "installing node and npm for the TypeScript client test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

dir=tests/typescript
stamp="$dir/node_modules/.mailgate-lock"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --prefix "$dir" --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" >"$stamp"
fi
