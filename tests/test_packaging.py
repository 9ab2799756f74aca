"""What ``pip install`` puts on a machine: everything under one ``decisionops`` namespace
(the folders agent/, tools/, graphs/, prompts/ and evals/ become decisionops.agent,
decisionops.tools, …), nothing at the top level of site-packages that another package
called ``tools`` or ``graphs`` could collide with, and every source and data file of
those folders in the wheel (a package left out of the list would install a product
that fails at its first import of it; the Dockerfile installs the wheel this way)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("agent", "tools", "graphs", "prompts", "evals")


def _shipped(folder: str) -> set[str]:
    """Every file of ``folder`` that belongs in the product (not caches, not tests)."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Built from a copy of the checkout's product files, so that no earlier build's
    leftovers (setuptools reuses build/lib) can stand in for a missing package."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    (path,) = out.glob("decisionops-*.whl")
    return zipfile.ZipFile(path)


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_the_product_under_one_namespace(wheel: zipfile.ZipFile
                                                                       ) -> None:
    names = set(wheel.namelist())
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"decisionops"}
    for folder in FOLDERS:
        missing = {f for f in _shipped(folder) if f"decisionops/{f}" not in names}
        assert not missing, f"not in the wheel: {sorted(missing)[:10]}"
    entry = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "decisionops = decisionops.agent.cli:main" in entry


def test_outside_the_checkout_only_the_decisionops_namespace_is_ours(tmp_path: Path) -> None:
    """The installed project, imported from an unrelated folder: ``import tools`` (and the
    other folder names) finds nothing of ours; ``decisionops.tools`` is the project's."""
    probe = (
        "import importlib.util, json\n"
        f"names = {list(FOLDERS)!r}\n"
        "found = {n: getattr(importlib.util.find_spec(n), 'origin', None) for n in names}\n"
        "ours = {n: importlib.util.find_spec('decisionops.' + n).origin for n in names}\n"
        "print(json.dumps({'found': found, 'ours': ours}))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, check=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    result = json.loads(done.stdout)
    for name, origin in result["found"].items():
        assert origin is None or not Path(origin).resolve().is_relative_to(ROOT), name
    for name, origin in result["ours"].items():
        assert Path(origin).resolve() == ROOT / name / "__init__.py"
