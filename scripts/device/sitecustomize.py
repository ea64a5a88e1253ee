"""Placeholders for packages a bare GPU machine lacks (PyAV, dlib), so that training, which never calls them,
can import talkinghead there. Put this folder on PYTHONPATH only on such a machine (scripts/device/*.sh do).

A placeholder imports; touching any of its attributes raises ImportError naming the package. A package that is
really installed is never replaced.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types

MISSING = {name for name in ("av", "dlib") if importlib.util.find_spec(name) is None}
MISSING |= set(filter(None, os.environ.get("TALKINGHEAD_PLACEHOLDERS", "").split(",")))  # to test here


class _Placeholder(types.ModuleType):
    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(f"{self.__name__}.{attr}: the package {self.__name__.split('.')[0]} is not installed here")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001, ANN201
        if name.split(".")[0] in MISSING:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):  # noqa: ANN001, ANN201
        module = _Placeholder(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):  # noqa: ANN001, ANN201
        return None


if MISSING:
    sys.meta_path.insert(0, _Finder())
