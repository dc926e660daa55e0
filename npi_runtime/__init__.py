"""npi: the neural side (model, training, executor, verification, CLI)."""
