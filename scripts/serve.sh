#!/usr/bin/env bash
# Install Mailgate and serve it on the embedded default: SQLite under ./data, 127.0.0.1:8025.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/mailgate serve "$@"
