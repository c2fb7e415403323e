"""The import contract (pyproject.toml, docs/architecture.md): no import cycle between the apps.

``make lint`` checks it too; here so that a test run alone also fails on a new upward import.
"""

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_apps_import_only_from_the_layers_below_them():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(  # noqa: S603 (fixed arguments)
        [lint_imports, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
