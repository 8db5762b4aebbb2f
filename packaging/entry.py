"""PyInstaller entry point: the frozen app starts here and hands over to the launcher."""

import sys

from carvalue_gui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
