"""Fixtures for the CrewAI engine tests: a hermetic environment and an execution driver.

The root conftest gives the session a private HOME and CrewAI's offline switches before
anything imports crewai; this one adds what only these tests need.
"""

from __future__ import annotations

import os
import tempfile

if not os.environ.get("HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HOME"] = tempfile.mkdtemp(prefix="kodosumi-crew-home-")
os.environ.setdefault("CREWAI_STORAGE_DIR", "kodosumi-tests")
os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_DISABLE_VERSION_CHECK"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ.pop("KODOSUMI_EXAMPLE_LLM", None)  # the examples must run on the offline model

import pytest

from engine.host import ExecutionHost
from engine.local_files import LocalFileBridge
from tests.engine_crew.helpers import Driver


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    # Files through a local folder (engine/local_files.py): flows with files run offline too.
    files = LocalFileBridge(tmp_path_factory.mktemp("driver-files"))
    return Driver(ExecutionHost(files=files))


def pytest_configure(config: pytest.Config) -> None:
    # crewai 1.15.30 reads its own deprecated attributes on every kickoff; nothing here can
    # act on those warnings, and hundreds of them would hide the ones that matter.
    config.addinivalue_line("filterwarnings", r"ignore::DeprecationWarning:crewai(\..*)?")
