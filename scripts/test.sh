#!/usr/bin/env bash
# Install what the tests need (the venv, Dovecot from Debian's packages, Cyrus, Courier, Postfix and Chromium beside it, a running
# PostgreSQL on 127.0.0.1:5432), then lint and run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

./scripts/install.sh --test

if [ ! -x /usr/sbin/dovecot ]; then
  echo "installing Dovecot (IMAP + POP3) for the tests"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    dovecot-core dovecot-imapd dovecot-pop3d >/dev/null
fi
./scripts/install-test-servers.sh  # Cyrus + Courier (interop tests), Postfix (SMTP tests), beside Dovecot
./scripts/install-client-tools.sh  # openapi-typescript + tsc for the generated-client test

if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
