"""Lazy re-exports for the subpackages' ``__init__`` modules.

A worker process that unpickles one compiled kernel imports its subpackage; eager re-exports
would import every module beside it (scikit-learn among them, in every worker), so each
``__init__`` names its public objects and they are imported on first use.
"""

from __future__ import annotations

import importlib


def exports(package: str, names: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for a package that re-exports ``names``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict
        Public name -> the module of the package that defines it.
    """
    def __getattr__(name: str):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(names)

    return __getattr__, __dir__
