"""The trainer: configuration, the network and its initialisation, the loop (one GPU or many,
checkpoints, resume), its losses and metrics, distillation from a teacher model file."""
