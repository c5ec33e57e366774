"""One process of a two-process JAX run on localhost (4 virtual CPU devices each).

``test_scaleout.py`` starts two of these, ``python scaleout_multiprocess.py
PROCESS_ID PORT HOW REPORT_PATH``, and compares what they write to REPORT_PATH
(a file, since Gloo's C++ logging shares stdout and can land in the middle of
a printed line): a JSON object with a SHA-256 of every kernel, gathered
whole across both processes, for each way of seeding a ModelParallel model
on the 8-device global mesh:

- ``keras_sync``: seed=None by string name, right after
  ``keras.distribution.initialize`` (Keras agrees a global seed across processes);
- ``int_seed``: seeded instances;
- ``set_random_seed``: seed=None after ``keras.utils.set_random_seed(7)`` on each.

With HOW=bare the processes start with a bare ``jax.distributed.initialize``
and build with seed=None and no Keras seed: the case where they can disagree,
which must warn (``warned``). Through Keras's ``layout`` path (3.15) they
disagree silently; on Keras 3.14 ``jax.device_put`` refuses the differing
values, reported as "refused by jax.device_put".
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings

os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

from keras_inits._base import DeterministicInitializer  # noqa: E402
from keras_inits._registry import CLASSES, registered_name  # noqa: E402

# Every class that fills a Dense kernel (Bilinear needs a square 4-D one).
DENSE = [cls for cls in CLASSES if cls.__name__ != "Bilinear"]


def kernels(by_name: bool) -> dict[str, str]:
    mesh = keras.distribution.DeviceMesh((2, 4), ("data", "model"), devices=jax.devices())
    layouts = keras.distribution.LayoutMap(mesh)
    layouts[".*kernel"] = (None, "model")
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layouts))
    try:
        model = keras.Sequential([keras.Input((64,))])
        for cls in DENSE:
            seeded = not by_name and not issubclass(cls, DeterministicInitializer)
            initializer = cls(seed=3) if seeded else registered_name(cls)
            model.add(keras.layers.Dense(64, kernel_initializer=initializer))
        digests = {}
        for i, variable in enumerate(model.weights):
            whole = np.asarray(multihost_utils.process_allgather(variable.value, tiled=True))
            digests[f"{i}:{variable.name}"] = hashlib.sha256(whole.tobytes()).hexdigest()
        return digests
    finally:
        keras.distribution.set_distribution(None)


def main() -> None:
    process_id, port, how, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    report: dict[str, object] = {}
    if how == "bare":
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                report["bare"] = kernels(by_name=True)
            except AssertionError as error:
                # A Keras without the `layout` path (3.14) places the whole value
                # with jax.device_put, which checks that every process passed
                # the same one: there the disagreement is an error, not silent.
                if "is not the same on each process" not in str(error):
                    raise
                report["bare"] = "refused by jax.device_put"
        report["warned"] = any("keras_inits: seed=None" in str(w.message) for w in caught)
    else:
        keras.distribution.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
        report["devices"] = jax.device_count()
        report["keras_sync"] = kernels(by_name=True)
        report["int_seed"] = kernels(by_name=False)
        keras.utils.set_random_seed(7)
        report["set_random_seed"] = kernels(by_name=True)
    with open(path, "w", encoding="utf-8") as file:
        json.dump(report, file)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
