"""What a method needs from its encoder, checked when a grid is prepared: a method that calls an
optional encoder hook (`Method.needs_hooks`: AimCLR's joint feature map, MAMP's tokens) that the
selected encoder lacks refuses the whole command before any cell trains, instead of failing
mid-grid after the other methods have spent their time. So does a finetune protocol asked to train
MAMP's head on the tokens of an encoder that has none."""

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


def missing_tokens_message(encoder_name: str) -> str:
    """The one line refusing `finetune.head=mamp_mlp` on an encoder without tokens."""
    return (
        f"finetune.head=mamp_mlp needs the encoder's tokens hook ({', '.join(ENCODER_HOOKS['tokens'])}), which encoder "
        f"{encoder_name} lacks; choose an encoder that has it, e.g. --set encoder.name=transformer, or --set finetune.head=linear"
    )


def check_finetune_head(configs: Mapping[str, RunConfig], protocols: list[str]) -> None:
    """Refuse (ConfigError, one line) a grid whose finetune protocol would train MAMP's MLP head
    (`finetune.head=mamp_mlp`, which reads the encoder's tokens) on an encoder without tokens."""
    if "finetune" not in protocols:
        return
    for method, cfg in configs.items():
        if cfg.finetune.head == "mamp_mlp" and "tokens" not in encoder_hooks(ENCODERS.get(cfg.encoder.name)):
            raise ConfigError(f"method {method}: {missing_tokens_message(cfg.encoder.name)}")
