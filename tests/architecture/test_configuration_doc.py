"""docs/configuration.md lists every environment variable the settings read, by its full name:
a variable added to the settings without a row there fails this test."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

READERS = {
    "env_str",
    "env_int",
    "env_float",
    "env_bool",
    "env_list",
    "_int",
    "_required",
    "os.environ.get",
    "os.getenv",
    "os.environ.setdefault",
}
NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")
SOURCES = [
    *sorted((ROOT / "facesite" / "settings").glob("*.py")),
    ROOT / "facesite" / "gunicorn.py",
    ROOT / "facesite" / "celery.py",
]


def variables_read() -> dict[str, str]:
    """Variable name -> the file that reads it (calls of the readers with a literal name, and
    ``os.environ["NAME"]``)."""
    found: dict[str, str] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Call) and ast.unparse(node.func) in READERS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    name = first.value
            elif (
                isinstance(node, ast.Subscript)
                and ast.unparse(node.value) == "os.environ"
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            ):
                name = node.slice.value
            if name and NAME.match(name):
                found.setdefault(name, path.relative_to(ROOT).as_posix())
    return found


def documented() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", text, flags=re.M))


def test_the_reader_finds_the_variables_it_should():
    found = variables_read()
    # One of each kind of reader: the check below is only as good as this scan.
    for name in (
        "FACESITE_MODEL",
        "DJANGO_SECRET_KEY",
        "GUNICORN_WORKERS",
        "GUNICORN_CONTROL_SOCKET",
        "DJANGO_ALLOWED_HOSTS",
        "FACESITE_PAGE_MAX_REQUEST_BYTES",
    ):
        assert name in found, name
    assert len(found) > 60


def test_every_variable_the_settings_read_has_a_row_in_configuration_md():
    missing = {name: where for name, where in variables_read().items() if name not in documented()}
    assert missing == {}, f"add these to docs/configuration.md: {missing}"
