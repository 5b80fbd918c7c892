"""What a method needs from its encoder, checked when a grid is prepared: a method that calls an
optional encoder hook (`Method.needs_hooks`: AimCLR's joint feature map, MAMP's tokens) that the
selected encoder lacks refuses the whole command before any cell trains, instead of failing
mid-grid after the other methods have spent their time."""

from __future__ import annotations

from collections.abc import Mapping

from halp_bench.config import RunConfig
from halp_bench.encoders.base import ENCODER_HOOKS, encoder_hooks
from halp_bench.errors import ConfigError
from halp_bench.registry import ENCODERS, METHODS

# an encoder of the project that has each hook, named in the refusal
HOOK_EXAMPLES = {"feature_map": "stgcn", "tokens": "transformer"}


def missing_hooks(method: str, encoder: str) -> list[str]:
    """The hooks `method` needs that the registered encoder `encoder` does not implement."""
    have = encoder_hooks(ENCODERS.get(encoder))
    return [hook for hook in METHODS.get(method).needs_hooks if hook not in have]


def check_encoder_hooks(configs: Mapping[str, RunConfig]) -> None:
    """Refuse (ConfigError, one line) the first method x encoder pair of `configs` (method name ->
    its configuration) whose encoder lacks a hook the method needs."""
    for method, cfg in configs.items():
        missing = missing_hooks(method, cfg.encoder.name)
        if missing:
            hook = missing[0]
            example = HOOK_EXAMPLES.get(hook)
            hint = f"; choose an encoder that has it, e.g. --set encoder.name={example}" if example else ""
            raise ConfigError(
                f"method {method} needs the encoder's {hook} hook ({', '.join(ENCODER_HOOKS[hook])}), which encoder {cfg.encoder.name} lacks{hint}"
            )
