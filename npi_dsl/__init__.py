"""npi_dsl: the .npi language and its symbolic world. Never imports npi_runtime or torch."""

__version__ = "0.1.0"
