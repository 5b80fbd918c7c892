"""Downstream protocols: `run_protocol(encoder, train, test, ctx) -> metrics`, registered by name."""
