"""Register ``df.b12lab`` as soon as pandas is there, without importing pandas to do it.

``import b12lab`` must stay cheap, yet ``df.b12lab.classify()`` must work whether pandas was
imported before b12lab or after it. If pandas is already loaded the accessor is registered at
once; otherwise a finder at the front of :data:`sys.meta_path` waits for ``import pandas``, lets
the other finders and the loader do all the work, registers the accessor right after pandas has
executed, and removes itself.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

__all__ = ["register_accessor"]

_ACCESSOR = "b12lab._io.accessor"


def register_accessor() -> None:
    """Register the accessor now if pandas is loaded, else when it is first imported."""
    if "pandas" in sys.modules:
        importlib.import_module(_ACCESSOR)
    elif not any(isinstance(finder, _PandasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PandasFinder())


class _PandasFinder:
    """Finds nothing itself: wraps the loader of ``pandas`` that the other finders find.

    (A meta path finder needs only ``find_spec``; importlib.abc is not worth its import time.)
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != "pandas":
            return None
        spec = _find_elsewhere(self, fullname, path, target)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            _register_after(spec.loader, self)
        return spec


def _find_elsewhere(
    hook: _PandasFinder, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> ModuleSpec | None:
    """The spec the other finders give, as if this hook had not been there."""
    for finder in list(sys.meta_path):
        if finder is hook:
            continue
        find_spec = getattr(finder, "find_spec", None)
        spec: ModuleSpec | None = find_spec(fullname, path, target) if find_spec else None
        if spec is not None:
            return spec
    return None


def _register_after(loader: object, hook: _PandasFinder) -> None:
    """Wrap this loader object's ``exec_module``: run it, restore it, register the accessor.

    The hook leaves :data:`sys.meta_path` only once pandas has executed: a mere
    ``importlib.util.find_spec("pandas")`` (a common "is pandas installed?" check) also asks the
    finders, and the spec it gets may never be loaded.
    """
    original = loader.exec_module  # type: ignore[attr-defined]

    def exec_module(module: ModuleType) -> None:
        try:
            original(module)
        finally:
            del loader.exec_module  # type: ignore[attr-defined]
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)
        importlib.import_module(_ACCESSOR)

    loader.exec_module = exec_module  # type: ignore[attr-defined]
