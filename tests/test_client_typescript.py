"""The TypeScript types a user generates from the spec (openapi-typescript 7, pinned in
tests/typescript/package-lock.json with TypeScript and openapi-fetch) are real types: they
are generated without a warning, and a small typed client (tests/typescript/client.ts:
messages, the raw source as a Blob, flags, a webhook, its payload, problems by type)
compiles with `tsc --strict`. scripts/install-test-servers.sh installs the tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from mailgate.api.openapi import openapi_json

HERE = Path(__file__).resolve().parent / "typescript"
BIN = HERE / "node_modules" / ".bin"


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=180
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_generated_typescript_types_compile_strictly(tmp_path: Path) -> None:
    assert (BIN / "tsc").exists(), (
        "run ./scripts/install-test-servers.sh (npm ci in tests/typescript)"
    )
    (tmp_path / "openapi.json").write_text(openapi_json())
    output = _run(BIN / "openapi-typescript", "openapi.json", "-o", "schema.d.ts", cwd=tmp_path)
    assert "warn" not in output.lower() and "⚠" not in output, output  # a warning fails
    for name in ("client.ts", "tsconfig.json"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "node_modules").symlink_to(HERE / "node_modules")
    _run(BIN / "tsc", "-p", "tsconfig.json", cwd=tmp_path)


def test_a_type_error_fails_the_check(tmp_path: Path) -> None:
    """The check has teeth: a client that reads a field the spec does not have fails."""
    (tmp_path / "openapi.json").write_text(openapi_json())
    _run(BIN / "openapi-typescript", "openapi.json", "-o", "schema.d.ts", cwd=tmp_path)
    broken = (HERE / "client.ts").read_text().replace("data.flags.flagged", "data.flags.starred")
    (tmp_path / "client.ts").write_text(broken)
    shutil.copy(HERE / "tsconfig.json", tmp_path / "tsconfig.json")
    (tmp_path / "node_modules").symlink_to(HERE / "node_modules")
    done = subprocess.run(
        [str(BIN / "tsc"), "-p", "tsconfig.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0 and "starred" in done.stdout, done.stdout
