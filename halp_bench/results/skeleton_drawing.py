"""Drawing skeleton sequences (`halp-bench show`): a strip of frames (PNG/SVG) or an animated GIF,
with the bones of the data's layout, every person, equal axes and frame numbers.

Each clip (a sample, or a view a method makes of it) is drawn in one plane: the vertical axis is
the coordinate the layout's spine bone points along (hip -> spine, averaged over the first
person's frames, upright), the horizontal one is x (y when the spine points along x); data whose
layout names no spine is drawn in the x-y plane. Every panel shares the same limits, so the
clips can be compared. An all-zero joint is missing and not drawn, a person absent from a clip
(zeros throughout) neither, except the first person's centre joint in a frame where the rest of
the body lies around the origin: centred data (data.normalize, prepare) put it there.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from halp_bench.common.atomic import atomic_write_bytes
from halp_bench.errors import ConfigError
from halp_bench.results.plots import check_formats, pyplot, save_figure
from halp_bench.skeleton import SkeletonLayout

SHOW_FORMATS = ("png", "svg", "gif")
STRIP_FRAMES = 8  # columns of a strip
GIF_FRAMES = 100  # at most, by default
PERSON_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


@dataclass
class Clip:
    title: str  # "sample", "moco view 1"
    x: np.ndarray  # (C, T, V, M): the frames to draw
    frame_numbers: np.ndarray  # (T,) 1-based frame numbers shown with each frame


def present(x: np.ndarray, layout: SkeletonLayout) -> np.ndarray:
    """(T, V, M) whether each joint of `x` (C, T, V, M) is there: not all-zero, or the first
    person's centre joint at the origin of a body centred on it (its other joints' mean lies
    closer to the origin than their spread)."""
    there = (x != 0).any(axis=0)
    centre = layout.center_joint
    if centre is not None:
        body = np.moveaxis(x[..., 0], 0, -1)  # (T, V, C)
        others = there[:, :, 0].copy()
        others[:, centre] = False
        count = np.maximum(others.sum(axis=1), 1)
        mean = (body * others[..., None]).sum(axis=1) / count[:, None]  # (T, C)
        spread = np.sqrt((((body - mean[:, None]) ** 2).sum(-1) * others).sum(axis=1) / count)
        there[:, centre, 0] |= (others.sum(axis=1) >= 2) & (np.linalg.norm(mean, axis=-1) < spread)
    return there


def plane(clip: Clip, layout: SkeletonLayout) -> tuple[int, int, float]:
    """(horizontal axis, vertical axis, sign that makes the spine point up) of `clip`."""
    channels = clip.x.shape[0]
    if channels < 2:
        raise ConfigError(f"cannot draw skeletons with C={channels} coordinate per joint; need 2 or 3")
    vertical, sign = 1, 1.0
    if layout.spine is not None:
        person = clip.x[..., 0]  # (C, T, V)
        hip, spine = person[:, :, layout.spine[0]], person[:, :, layout.spine[1]]
        there = present(clip.x, layout)
        both = there[:, layout.spine[0], 0] & there[:, layout.spine[1], 0]
        if both.any():
            mean = (spine - hip)[:, both].mean(axis=1)
            vertical = int(np.argmax(np.abs(mean)))
            sign = 1.0 if mean[vertical] >= 0 else -1.0
    return (1 if vertical == 0 else 0), vertical, sign


def _points(x: np.ndarray, layout: SkeletonLayout, horizontal: int, vertical: int, sign: float) -> np.ndarray:
    """(T, M, V, 2) drawing coordinates, NaN where a joint is missing."""
    points = np.stack([x[horizontal], sign * x[vertical]], axis=-1).transpose(0, 2, 1, 3).astype(np.float64)  # (T, M, V, 2)
    points[~present(x, layout).transpose(0, 2, 1)] = np.nan
    return points


class _Panel:
    """One axes showing one clip, updated frame by frame (bones as line segments, joints as dots)."""

    def __init__(self, ax, points: np.ndarray, layout: SkeletonLayout, limits: tuple[float, float, float, float]):
        self.ax, self.points = ax, points
        self.bones = [(a, b) for a, b in layout.bones if a != b]
        persons = [m for m in range(points.shape[1]) if not np.isnan(points[:, m]).all()]
        self.lines = {m: [ax.plot([], [], color=PERSON_COLOURS[m % len(PERSON_COLOURS)], linewidth=1.6)[0] for _ in self.bones] for m in persons}
        self.dots = {m: ax.plot([], [], "o", color=PERSON_COLOURS[m % len(PERSON_COLOURS)], markersize=2.2)[0] for m in persons}
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[2], limits[3])
        ax.set_aspect("equal")
        ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)

    def show(self, t: int, title: str) -> None:
        for m, lines in self.lines.items():
            frame = self.points[t, m]
            for line, (a, b) in zip(lines, self.bones):
                line.set_data(frame[[a, b], 0], frame[[a, b], 1])
            self.dots[m].set_data(frame[:, 0], frame[:, 1])
        self.ax.set_title(title, fontsize="small")


def _limits(all_points: list[np.ndarray]) -> tuple[float, float, float, float]:
    flat = np.concatenate([p.reshape(-1, 2) for p in all_points])
    flat = flat[~np.isnan(flat).any(axis=1)]
    if not len(flat):
        return -1.0, 1.0, -1.0, 1.0
    low, high = flat.min(axis=0), flat.max(axis=0)
    margin = 0.06 * max(float((high - low).max()), 1e-3)
    return low[0] - margin, high[0] + margin, low[1] - margin, high[1] + margin


def draw_clips(title: str, layout: SkeletonLayout, clips: list[Clip], stem: Path, fmt: str, frames: int | None = None, fps: int = 15) -> Path:
    """`<stem>.<fmt>`: a strip (png, svg; one row per clip, `frames` evenly spaced frames, default
    STRIP_FRAMES) or an animated gif (one panel per clip, `frames` steps, default every frame of the
    longest clip up to GIF_FRAMES; shorter clips are stretched over the same time)."""
    check_formats((fmt,), SHOW_FORMATS)
    if frames is not None and frames < 1:
        raise ConfigError(f"--frames {frames}: expected at least 1")
    plt = pyplot()
    horizontal, vertical, sign = plane(clips[0], layout)
    points = [_points(clip.x, layout, horizontal, vertical, sign) for clip in clips]
    limits = _limits(points)
    names = "xyz"
    axes_note = f"{names[horizontal]} across, {'' if sign > 0 else '-'}{names[vertical]} up; person 1 blue, person 2 orange"
    if fmt == "gif":
        return _animate(plt, f"{title}\n{axes_note}", layout, clips, points, limits, stem, frames, fps)
    columns = frames or STRIP_FRAMES
    width = (limits[1] - limits[0]) / max(limits[3] - limits[2], 1e-6)
    fig, axes = plt.subplots(len(clips), columns, figsize=(max(1.0, min(2.2 * width, 3.0)) * columns, 2.4 * len(clips) + 0.7), squeeze=False)
    for row, (clip, clip_points) in enumerate(zip(clips, points)):
        shown = np.unique(np.linspace(0, len(clip.frame_numbers) - 1, min(columns, len(clip.frame_numbers))).round().astype(int))
        for column in range(columns):
            ax = axes[row][column]
            if column >= len(shown):
                ax.axis("off")
                continue
            t = shown[column]
            _Panel(ax, clip_points, layout, limits).show(t, f"frame {clip.frame_numbers[t]}/{clip.frame_numbers[-1]}")
        first = axes[row][0]  # coordinates on the first frame of each row: where the body is, how large
        first.tick_params(left=True, bottom=True, labelleft=True, labelbottom=True, labelsize="x-small")
        first.locator_params(nbins=3)
        first.set_ylabel(clip.title, fontsize="small")
    fig.suptitle(f"{title}\n{axes_note}", fontsize="small")
    fig.tight_layout()
    (path,) = save_figure(fig, stem, (fmt,), dpi=90)
    return path


def _animate(
    plt,
    title: str,
    layout: SkeletonLayout,
    clips: list[Clip],
    points: list[np.ndarray],
    limits: tuple[float, float, float, float],
    stem: Path,
    frames: int | None,
    fps: int,
) -> Path:
    from matplotlib.animation import FuncAnimation, PillowWriter

    steps = frames or min(max(len(clip.frame_numbers) for clip in clips), GIF_FRAMES)
    fig, axes = plt.subplots(1, len(clips), figsize=(3.0 * len(clips), 3.6), squeeze=False)
    panels = [_Panel(ax, clip_points, layout, limits) for ax, clip_points in zip(axes[0], points)]
    for ax, clip in zip(axes[0], clips):
        ax.set_xlabel(clip.title, fontsize="small")
    fig.suptitle(title, fontsize="small")
    fig.tight_layout()

    def update(step: int) -> list:
        for panel, clip in zip(panels, clips):
            count = len(clip.frame_numbers)
            t = min(int(step * count / steps), count - 1)
            panel.show(t, f"frame {clip.frame_numbers[t]}/{clip.frame_numbers[-1]}")
        return []

    animation = FuncAnimation(fig, update, frames=steps, blit=False)
    path = stem.with_suffix(".gif")
    with tempfile.TemporaryDirectory() as folder:
        temporary = Path(folder) / "animation.gif"
        animation.save(str(temporary), writer=PillowWriter(fps=fps), dpi=70)
        data = temporary.read_bytes()
    atomic_write_bytes(path, lambda handle: handle.write(data))
    plt.close(fig)
    return path
