"""The explicit import list of built-in plugins (methods, encoders, datasets, protocols).

Importing a module registers what it defines; third-party methods come in through the
`halp_bench.methods` entry-point group (see `registry.load_plugins`).
"""

import halp_bench.datasets.formats.prepared_dir
import halp_bench.datasets.synthetic
import halp_bench.encoders.bigru
import halp_bench.encoders.stgcn
import halp_bench.encoders.transformer
import halp_bench.methods.aimclr
import halp_bench.methods.cmd
import halp_bench.methods.crossclr
import halp_bench.methods.halp
import halp_bench.methods.halp_ablations
import halp_bench.methods.halp_cmd
import halp_bench.methods.mamp
import halp_bench.methods.moco
import halp_bench.methods.random_init
import halp_bench.methods.skeletonclr
import halp_bench.protocols.finetune
import halp_bench.protocols.knn
import halp_bench.protocols.linear
import halp_bench.protocols.semi
import halp_bench.protocols.transfer  # noqa: F401
