"""``python -m postmortem ...`` runs the analyzer, as the ``postmortem``
command does."""

import os
import subprocess
import sys

from postmortem import find_bin

if __name__ == "__main__":
    binary = find_bin()
    if sys.platform == "win32":
        sys.exit(subprocess.call([binary, *sys.argv[1:]]))
    os.execv(binary, [binary, *sys.argv[1:]])
