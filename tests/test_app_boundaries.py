"""Notifications knows the apps it listens to through declared doors only; they know nothing of it.

Notifications listens to ``approvals.signals`` (the events and the statuses their rows carry) and
to ``contracts.signals`` (a comment), and issues approval links through
``approvals.link_services``. Nothing else of those apps is imported by it, so their internals can
change without it noticing. The other way round nothing at all: the layers forbid it
(``tests/test_import_contract.py``), and the pairs that once had an exception are pinned here
empty: the SLA check writes notifications through the port ``core.fanout``, a comment is
announced by a signal, and workflows registers its use of roles with tenancy's role catalog.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    # (importing app, imported app): the modules of the imported app it may import
    ("notifications", "approvals"): {"approvals.signals", "approvals.link_services"},
    ("notifications", "contracts"): {"contracts.signals"},
    ("approvals", "notifications"): set(),
    ("contracts", "notifications"): set(),
    ("tenancy", "workflows"): set(),
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
