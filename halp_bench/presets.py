"""The run-level values of the three presets: `paper` (the paper's recipe), `official` (the authors'
code as it produced the published tables) and `cpu` (minutes on a laptop). Method, encoder and
augmentation values of each preset live with their settings classes (`presets = {...}`) and the
methods' `run_defaults`; `config.make_config` puts them together."""

from __future__ import annotations

from halp_bench.config import EncoderSettings, FinetuneConfig, OptimConfig, RunConfig, is_pku


def paper_preset(dataset: str = "") -> RunConfig:
    """The paper's recipe: 3x1024 BiGRU, queue 16384, 451 epochs (x0.1 at 351), linear 80 epochs."""
    return RunConfig(preset="paper")


def official_preset(dataset: str = "") -> RunConfig:
    """The authors' code as it produced the published tables: per-frame BiGRU, best-of-test reporting.

    Values from the shipped scripts (papers/official_code.md): `bigru_official`, linear and transfer
    report the best test top-1 over evaluations every 5 epochs; PKU-MMD II pretrains 1001 epochs
    (x0.1 at 801). Method values live with the methods (`presets["official"]`, `"official:pku"`,
    and `run_defaults`): HaLP's t ~ U((1-λ)t*, t*), refresh 10, μ = 2 on NTU (1 on PKU), its
    probe at lr 0.005 (NTU) / 0.001 (PKU) for the MoCo baseline and HaLP, CMD's at 0.1.
    """
    cfg = RunConfig(preset="official", encoder=EncoderSettings(name="bigru_official"))
    cfg.eval.report, cfg.eval.eval_every = "best", 5
    if is_pku(dataset):
        cfg.pretrain.epochs, cfg.pretrain.milestones = 1001, (801,)
    return cfg


def cpu_preset(dataset: str = "") -> RunConfig:
    """Minutes on a 2-core CPU: 1x128 BiGRU, 16-frame views, queue 1024, 60 short epochs.

    Run-level values here; the method, encoder and augmentation values of this preset live with
    their settings classes (`presets["cpu"]`). Measured choices: docs/presets.md.
    """
    cfg = RunConfig(preset="cpu", checkpoint_every=10)
    cfg.data.frames = 16
    cfg.pretrain = OptimConfig(epochs=60, batch_size=64, lr=0.05, milestones=(50,))
    cfg.linear = OptimConfig(epochs=20, batch_size=64, lr=0.1, weight_decay=0.0, milestones=(14, 18))
    cfg.transfer = OptimConfig(epochs=10, batch_size=64, lr=0.01, weight_decay=0.0, milestones=(7, 9))
    cfg.finetune = FinetuneConfig(epochs=10, batch_size=64, lr=0.01, weight_decay=0.0, milestones=(7, 9))
    cfg.eval.eval_every = 2
    return cfg


PRESETS = {"paper": paper_preset, "official": official_preset, "cpu": cpu_preset}
PRESET_DESCRIPTIONS = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in PRESETS.items()}
