"""`npi lint`'s defaults (documented in docs/cli.md), apart from npi_dsl.lint so that the
command line can show them without importing the lint and the interpreter it runs."""

#: inputs per length
DEFAULT_COUNT = 50
#: input lengths
DEFAULT_LENGTHS = "1..10"
