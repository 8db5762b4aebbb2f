"""PyInstaller entry point: the frozen app starts here and hands over to the launcher."""

import os
import sys

# No ONNX Runtime usage telemetry from the installed app (see core/modelfile.open_session);
# set here too so it holds whatever imports onnxruntime first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from carvalue_gui.launcher import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
