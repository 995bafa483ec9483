"""The layering rules hold at run time too: importing every module of the engine and of the
training loads no Django, no DRF, no Celery and no app (import-linter checks the same from the
source in `make lint`). Run in a fresh process, whose sys.modules start empty."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORBIDDEN = ("django", "rest_framework", "celery", "facesite", "recognition", "members", "accounts")

SCRIPT = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [package.__name__]
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(info.name)
    names.append(info.name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("package", ["faceengine", "facetrain"])
def test_importing_every_module_loads_no_django_and_no_app(package):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["imported"]) > 5  # it really walked the package
    leaked = [name for name in report["loaded"] if name.split(".")[0] in FORBIDDEN]
    assert leaked == [], leaked
