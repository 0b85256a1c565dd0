"""Lazy module proxies, so that loading the Dagster definitions does not import pandas/numpy.

``from revops_pipelines.lazy import pd`` behaves like ``import pandas as pd`` except that pandas is
imported on first attribute access (inside an asset at run time, not at definition load).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_name"] = name
        self.__dict__["_lazy_mod"] = None

    def _load(self) -> ModuleType:
        mod = self.__dict__["_lazy_mod"]
        if mod is None:
            mod = importlib.import_module(self.__dict__["_lazy_name"])
            self.__dict__["_lazy_mod"] = mod
        return mod

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)


pd: Any = LazyModule("pandas")
np: Any = LazyModule("numpy")
