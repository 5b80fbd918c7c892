"""The explicit import list of built-in plugins (methods, encoders, datasets, protocols).

Importing a module registers what it defines; third-party methods come in through the
`halp_bench.methods` entry-point group (see `registry.load_plugins`).
"""

import halp_bench.datasets.formats.prepared_dir  # noqa: F401
import halp_bench.datasets.synthetic  # noqa: F401
import halp_bench.encoders.bigru  # noqa: F401
import halp_bench.encoders.stgcn  # noqa: F401
import halp_bench.encoders.transformer  # noqa: F401
import halp_bench.methods.aimclr  # noqa: F401
import halp_bench.methods.cmd  # noqa: F401
import halp_bench.methods.crossclr  # noqa: F401
import halp_bench.methods.halp  # noqa: F401
import halp_bench.methods.halp_ablations  # noqa: F401
import halp_bench.methods.halp_cmd  # noqa: F401
import halp_bench.methods.mamp  # noqa: F401
import halp_bench.methods.moco  # noqa: F401
import halp_bench.methods.random_init  # noqa: F401
import halp_bench.methods.skeletonclr  # noqa: F401
import halp_bench.protocols.finetune  # noqa: F401
import halp_bench.protocols.knn  # noqa: F401
import halp_bench.protocols.linear  # noqa: F401
import halp_bench.protocols.semi  # noqa: F401
import halp_bench.protocols.transfer  # noqa: F401
