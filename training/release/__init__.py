"""From a finished run to the file the app ships: held-out evaluation, ONNX export, the model card."""
