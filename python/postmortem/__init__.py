"""postmortem: tells why a neural-network training run went wrong.

The analyzer is the ``postmortem`` command this package installs
(:func:`find_bin` finds it); :mod:`postmortem.torch` records PyTorch
training in the run format it reads (docs/FORMAT.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig

__version__ = "0.1.0"


def find_bin() -> str:
    """The path of the ``postmortem`` binary installed with this package (or,
    failing that, the first on ``PATH``)."""
    name = "postmortem" + (".exe" if sys.platform == "win32" else "")
    for scheme in (None, f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        candidate = os.path.join(scripts, name)
        if os.path.isfile(candidate):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError("the postmortem binary is not installed: pip install postmortem (or ./python from the repository)")
    return found
