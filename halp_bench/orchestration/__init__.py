"""Orchestration: which cells exist and how they are computed and stored (the grid of `run`, `eval`,
`ensemble`, the launchers), on top of the core contract (config, registry, identity, skeleton layouts)."""
