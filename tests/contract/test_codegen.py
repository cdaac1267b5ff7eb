"""The committed generated code is exactly what the protos produce, and the protos lint clean."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "kodosumi" / "v1"
BUF = Path(sys.executable).parent / "buf"  # the buf-bin wheel of the dev extra


def test_generated_code_has_not_drifted(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_proto.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = tmp_path / "kodosumi" / "v1"
    fresh_files = sorted(p.name for p in fresh.iterdir() if p.suffix in {".py", ".pyi"})
    committed = sorted(p.name for p in GENERATED.iterdir() if p.suffix in {".py", ".pyi"})
    assert fresh_files == committed, "run `make proto`: generated files were added or removed"
    _, mismatch, errors = filecmp.cmpfiles(fresh, GENERATED, fresh_files, shallow=False)
    assert not mismatch and not errors, f"run `make proto`: {mismatch + errors} differ"


def test_buf_lint_is_clean() -> None:
    assert BUF.exists(), "`make install` installs buf (the buf-bin wheel) into .venv"
    result = subprocess.run(
        [str(BUF), "lint"], check=False, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
