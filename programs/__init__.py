"""The bundled reference programs, installed as the package `npi_programs` (see npi_dsl.bundled)."""
