"""`python -m npi_runtime ...` is `npi ...` (what torchrun starts: `torchrun ... -m npi_runtime
train ...`)."""

from npi_runtime.cli import main

main()
