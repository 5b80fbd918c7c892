"""Built-in synthetic skeleton actions: a dataset that needs no download and is made in ~1 s.

Why it exists: every protocol must run on a fresh machine, and the benchmark needs a dataset whose
difficulty is known. Bodies are NTU-25 skeletons from forward kinematics (per-subject bone lengths;
joint angles driven by a per-class motion program), filmed by Kinect-like cameras.

Nuisances hide the motion from raw-pose matching: camera view (yaw about the vertical, tilt,
distance, height), subject size and proportions, handedness (left-handed subjects mirror every
program; classes are "dominant hand" actions, so mirroring never turns one class into another),
tempo, a time warp within the clip, amplitude, phase, where in the clip the action happens,
facing and position jitter, idle postures and brief gestures of the limbs the action leaves
alone, sensor noise and a few dropped joints (zeros, like Kinect losses). Samples are
zero-padded after their length. Two pairs of `synthetic` classes differ mainly in their dynamics
("wave" / "raise hand", "walk" / "jog in place"), which frame-by-frame matching cannot see.

Splits: `xsub` (odd subject ids train, even ids test; the default) and `xview` (views 2, 3 train,
view 1 test). Metadata: `subject`, `view` (1-based, as in NTU). `synthetic-target` is the transfer
target (an NTU -> PKU-MMD stand-in): ten other motion programs, other camera angles, other subjects.

Difficulty, measured by `raw_pose_knn_accuracy` (cosine 1-NN on raw poses resized to 32 frames;
chance 10 %), 1800 samples:

    dataset (seed)          xsub    xview   same after 2s-AGCN pre-normalisation (xsub, xview)
    synthetic (0)           47.4 %  46.8 %  79.9 %, 81.7 %
    synthetic-target (1)    49.8 %  46.2 %  89.6 %, 92.2 %

A small supervised BiGRU (1x128, 60 epochs, pre-normalised input) reaches about 86 % on synthetic
xsub; most of its errors are "wave" / "raise hand", which it has not learned to tell apart.
"""

from halp_bench.datasets.synthetic.body import MIRROR
from halp_bench.datasets.synthetic.generate import load_synthetic, make_synthetic, raw_pose_knn_accuracy, resize_valid
from halp_bench.datasets.synthetic.programs import PROGRAMS
from halp_bench.datasets.synthetic.spec import SOURCE_CLASSES, TARGET_CLASSES, TARGET_SPEC, SyntheticSpec

__all__ = [
    "MIRROR",
    "PROGRAMS",
    "SOURCE_CLASSES",
    "TARGET_CLASSES",
    "TARGET_SPEC",
    "SyntheticSpec",
    "load_synthetic",
    "make_synthetic",
    "raw_pose_knn_accuracy",
    "resize_valid",
]
