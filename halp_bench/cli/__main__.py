"""`python -m halp_bench.cli` (what torchrun and the launchers start)."""

from halp_bench.cli import main

main()
