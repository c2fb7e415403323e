"""Approvals and notifications know each other through two declared doors only.

Notifications listens to ``approvals.signals`` (the events and the statuses their rows carry);
approvals writes notifications through ``notifications.services``' fan-out. Nothing else of one
is imported by the other, so there is no import cycle between them and either side's internals
(models, receivers, the SLA check) can change without the other noticing.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    # (importing app, imported app): the modules of the imported app it may import
    ("notifications", "approvals"): {"approvals.signals", "approvals.link_services"},
    ("approvals", "notifications"): {"notifications.services"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize(("app", "other"), list(ALLOWED))
def test_only_the_declared_modules_are_imported(app, other):
    allowed = ALLOWED[(app, other)]
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / app).rglob("*.py")
        for name in _imports(path)
        if (name == other or name.startswith(f"{other}."))
        and not any(name == module or name.startswith(f"{module}.") for module in allowed)
    }
    assert offending == set()
