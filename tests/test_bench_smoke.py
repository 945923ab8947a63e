"""The benchmark runs: ``python -m bench --smoke`` end to end, in a subprocess.

It starts its own server. Only the shape of the results is checked: every
scenario is there with numeric figures. Benchmarks are not tests, so no
figure is compared with any threshold here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.scenarios import ORDER

ROOT = Path(__file__).resolve().parent.parent


def _numeric(stat: Any) -> bool:
    return (
        isinstance(stat, dict)
        and all(isinstance(stat.get(k), int | float) for k in ("median", "min", "max"))
        and all(math.isfinite(stat[k]) for k in ("median", "min", "max"))
    )


@pytest.mark.slow
def test_smoke_mode_writes_every_scenario(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "done in" in proc.stderr  # progress went to stderr

    results = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert results["meta"]["mode"] == "smoke"
    assert list(results["scenarios"]) == list(ORDER)
    for name, scenario in results["scenarios"].items():
        assert "error" not in scenario, f"{name}: {scenario.get('error')}"
        if name == "gateway" and "skipped" in scenario:
            assert scenario["skipped"].startswith("gateway not available")
            continue
        assert scenario["rows"], name
        for row in scenario["rows"]:
            assert _numeric(row["value"]), (name, row)
            if row["ratio"] is not None:
                assert _numeric(row["ratio"]), (name, row)

    assert len(results["targets"]) == 5
    for target in results["targets"]:
        assert target["met"] in (True, False, None)
        assert target["measured"]

    table = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "| Target | Measured | Met |" in table
    for png in results["plots"]:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
