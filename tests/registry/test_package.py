"""The registry's package boundaries: its public names, and what it must never import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import registryd

REPO = Path(__file__).resolve().parents[2]


def test_the_public_surface_is_pinned() -> None:
    assert sorted(registryd.__all__) == [
        "Clock",
        "LeaseConfig",
        "ManualClock",
        "Registry",
        "RegistryConfig",
        "RegistryDaemon",
        "SystemClock",
        "TlsConfig",
        "load_config",
    ]
    for name in registryd.__all__:
        assert getattr(registryd, name) is not None


def test_registryd_never_imports_the_node_the_engine_or_ray() -> None:
    probe = (
        "import sys, registryd, registryd.cli, registryd.daemon; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'kodosumid', 'engine', 'ray'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_registry_error_is_in_the_catalog_with_its_status() -> None:
    from kodosumi.errors import CATALOG, KodosumiError
    from registryd import errors

    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, KodosumiError) and c.__module__ == errors.__name__
    ]
    assert len(classes) == 7
    for cls in classes:
        assert cls.default_reason in CATALOG, cls
        assert CATALOG[cls.default_reason].status == cls.status, cls
