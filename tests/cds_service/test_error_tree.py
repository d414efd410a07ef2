"""One exception tree with one root (cds_service.errors.Her2CdsError) for the service and the
command line, no Werkzeug name shadowed."""

from __future__ import annotations

import importlib
import inspect

import werkzeug.exceptions

from cds_service.errors import Her2CdsError
from tests.conftest import ROOT


def _service_exceptions() -> list[type[BaseException]]:
    found = []
    paths = [*(ROOT / "cds_service").rglob("*.py"), *(ROOT / "her2cds_cli").rglob("*.py")]
    for path in sorted(paths):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_service_error_has_the_one_root() -> None:
    errors = _service_exceptions()
    assert len(errors) > 10
    assert [e.__qualname__ for e in errors if not issubclass(e, Her2CdsError)] == []


def test_no_error_shadows_a_werkzeug_exception() -> None:
    werkzeug_names = {
        name
        for name, obj in vars(werkzeug.exceptions).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    }
    assert {"BadRequest", "NotFound", "MethodNotAllowed"} <= werkzeug_names
    assert sorted({e.__name__ for e in _service_exceptions()} & werkzeug_names) == []
