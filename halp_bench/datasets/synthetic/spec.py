"""What the synthetic generator makes: the classes, the cameras, the nuisances (`SyntheticSpec`)
and the seeds of the two built-in datasets."""

from __future__ import annotations

from dataclasses import dataclass

FPS = 30.0  # frames per second of the simulated sensor: program frequencies are in Hz
NUM_JOINTS = 25

SOURCE_CLASSES: tuple[str, ...] = ("wave", "raise hand", "kick", "squat", "walk in place", "jog in place", "punch", "clap", "handshake", "push")
TARGET_CLASSES: tuple[str, ...] = ("drink", "phone call", "jump", "bow", "side arm raise", "throw", "point forward", "turn torso", "hug", "give object")


@dataclass(frozen=True)
class SyntheticSpec:
    """Generation parameters. Frozen and hashable so that it can key the in-process cache."""

    num_samples: int = 1800
    classes: tuple[str, ...] = SOURCE_CLASSES  # motion program names, see `PROGRAMS`
    num_subjects: int = 20
    view_yaw_deg: tuple[float, ...] = (-45.0, 0.0, 45.0)  # camera azimuth per view (view 1, 2, ...)
    view_tilt_deg: tuple[float, ...] = (4.0, -3.0, 6.0)  # camera pitch per view
    max_frames: int = 96
    min_frames: int = 40
    size_range: tuple[float, float] = (0.72, 1.28)  # subject height relative to 1.75 m
    facing_jitter_deg: float = 20.0  # std of where a performer faces, relative to the script
    view_jitter_deg: float = 5.0  # std of the camera yaw around its view angle
    position_jitter: float = 0.55  # metres, std of the sideways position in the camera frame
    action_span: tuple[float, float] = (0.5, 0.9)  # share of the clip the action takes (random start)
    style_gain: float = 0.15  # std of the log of each limb's movement gain per sample
    distractor_prob: float = 0.4  # chance that a limb the action leaves alone makes a brief gesture
    time_warp: float = 0.5  # < 1: the largest change of speed within a clip (0.5 = +-50 %)
    noise_std: float = 0.01  # metres, Gaussian sensor noise on every joint
    drop_prob: float = 0.15  # chance that a sample loses a few joints for a few frames

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_views(self) -> int:
        return len(self.view_yaw_deg)


TARGET_SPEC = SyntheticSpec(classes=TARGET_CLASSES, num_subjects=16, view_yaw_deg=(-60.0, -10.0, 30.0), view_tilt_deg=(-2.0, 8.0, 3.0))
SOURCE_SEED = 0
TARGET_SEED = 1
