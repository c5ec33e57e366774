"""Past one device: the scale-out scripts, each run once per ``make test``.

The scripts need a fresh interpreter (XLA_FLAGS and TensorFlow's logical
devices must be set before the backend starts), so each runs in a
subprocess, and only from the pytest session of its own backend: the JAX
ones when KERAS_BACKEND=jax, the TensorFlow one when KERAS_BACKEND=tensorflow.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import to_numpy

from keras_inits._base import DeterministicInitializer
from keras_inits._registry import CLASSES

# The scale-out scripts build one Dense per class that fills a Dense kernel
# (all but Bilinear, which needs a square 4-D one): a kernel and a bias each.
DENSE_WEIGHTS = 2 * sum(cls.__name__ != "Bilinear" for cls in CLASSES)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKEND = keras.backend.backend()


def run_script(name, *args, env=None, timeout=300):
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **(env or {}),
    }
    completed = subprocess.run(
        [sys.executable, os.path.join(HERE, name), *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout)


# ----- JAX, 8 virtual CPU devices ----------------------------------------------
@pytest.fixture(scope="module")
def jax_report():
    if BACKEND != "jax":
        pytest.skip("runs once per `make test`, from the JAX session (8 virtual JAX devices)")
    return run_script(
        "scaleout_jax.py", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    )


@pytest.mark.slow
def test_one_stream_on_every_path_and_mesh(jax_report):
    assert jax_report["devices"] == 8
    # eager, jit, jit with shardings on 1x2, 2x4 and 8x1 meshes, `layout` (a JAX
    # sharding or a Keras TensorLayout) and a ModelParallel build by string name.
    assert jax_report["mismatches"] == []
    assert jax_report["model_weights"] == DENSE_WEIGHTS


@pytest.mark.slow
def test_values_come_back_with_the_sharding_asked_for(jax_report):
    assert jax_report["shardings"] == []


@pytest.mark.slow
def test_per_device_memory_of_a_sharded_draw_against_keras(jax_report):
    """Within 1.5x of Keras's HeNormal (Orthogonal for the QR classes), same run.

    Sparse draws a mask and its values (two draws and a loop over the columns' picks)
    and is held to 2x: see docs/devices.md.
    """
    for name, figures in jax_report["memory"].items():
        limit = 2.0 if name == "Sparse" else 1.5
        assert figures["ours"] <= limit * figures["keras"], (name, figures)


@pytest.mark.slow
def test_identity_like_kernels_are_small_programs(jax_report):
    # A 2048 x 4096 float32 kernel as a constant would be 32 MiB of program text.
    for name, size in jax_report["program_bytes"].items():
        assert size < 1 << 20, (name, size)
    assert set(jax_report["program_bytes"]) == {"ConvIdentity", "HadamardIdentity"}


# ----- TensorFlow, MirroredStrategy over two logical CPU devices ---------------
@pytest.fixture(scope="module")
def tf_report():
    if BACKEND != "tensorflow":
        pytest.skip("runs once per `make test`, from the TensorFlow session (logical devices)")
    return run_script("scaleout_tf.py")


@pytest.mark.slow
def test_mirrored_strategy_replicas_agree(tf_report):
    assert tf_report["replicas"] == 2
    assert tf_report["variables"] > 30
    assert tf_report["unmirrored"] == []
    assert tf_report["replica_mismatches"] == []


@pytest.mark.slow
def test_seeded_values_equal_inside_and_outside_the_scope_and_under_tf_function(tf_report):
    assert tf_report["scope_mismatches"] == []


@pytest.mark.slow
def test_fit_save_and_reload_under_the_scope(tf_report):
    first, last = tf_report["fit_loss"]
    assert last < first
    assert tf_report["reload_max_diff"] == 0.0


# ----- JAX, two processes on localhost -----------------------------------------
def run_two_processes(how, folder):
    """Both processes' reports (each writes its JSON to a file in ``folder``)."""
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    script = os.path.join(HERE, "scaleout_multiprocess.py")
    processes = [
        subprocess.Popen(
            [sys.executable, script, str(i), port, how, os.path.join(folder, f"{i}.json")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for i in range(2)
    ]
    reports = []
    for i, process in enumerate(processes):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-4000:]
        with open(os.path.join(folder, f"{i}.json"), encoding="utf-8") as file:
            reports.append(json.load(file))
    return reports


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    if BACKEND != "jax":
        pytest.skip("runs once per `make test`, from the JAX session (two JAX processes)")
    return run_two_processes("keras", tmp_path_factory.mktemp("two_processes"))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["keras_sync", "int_seed", "set_random_seed"])
def test_two_processes_build_identical_kernels(two_processes, how):
    first, second = two_processes
    assert first["devices"] == second["devices"] == 8
    assert len(first[how]) == DENSE_WEIGHTS  # a kernel and a bias per class
    assert first[how] == second[how]


@pytest.mark.slow
def test_two_processes_with_no_seed_anywhere_warn(tmp_path):
    """A bare jax.distributed.initialize and seed=None: the processes disagree, and we warn.

    On Keras 3.14, which has no ``layout`` path, the disagreement is loud instead:
    ``jax.device_put`` refuses values that differ between processes.
    """
    if BACKEND != "jax":
        pytest.skip("runs once per `make test`, from the JAX session (two JAX processes)")
    first, second = run_two_processes("bare", tmp_path)
    keras_minor = tuple(int(part) for part in keras.__version__.split(".")[:2])
    if keras_minor >= (3, 15):  # the layout path: each process draws its own shards
        assert first["bare"] != second["bare"]  # what the warning is about
        assert first["warned"] and second["warned"]
    else:  # no layout path: jax.device_put checks the processes agree, and they do not
        assert first["bare"] == second["bare"] == "refused by jax.device_put"


@pytest.mark.slow
def test_distributed_example_runs_and_matches_the_one_device_build():
    if BACKEND != "jax":
        pytest.skip("runs once per `make test`, from the JAX session (8 virtual JAX devices)")
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "distributed.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = [line for line in completed.stdout.splitlines() if "kernel" in line]
    assert len(lines) == 3
    assert all(line.endswith("identical to the one-device build: True") for line in lines)
    assert "spec P(None, 'model')" in lines[0] and "shard (256, 256)" in lines[0]


# ----- The `layout` argument, in this process, on every backend ----------------
def fresh(cls, seed=9):
    return cls() if issubclass(cls, DeterministicInitializer) else cls(seed=seed)


def small_kernel(cls):
    return {"Bilinear": (4, 4, 8, 8), "DeltaOrthogonal": (3, 3, 8, 16)}.get(cls.__name__, (96, 40))


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.__name__ for cls in CLASSES])
def test_every_initializer_takes_keras_layout_argument(cls):
    # Keras passes `layout` only to an initializer whose signature names it.
    assert "layout" in inspect.signature(fresh(cls)).parameters
    shape = small_kernel(cls)
    plain = fresh(cls)(shape)
    if BACKEND == "jax":
        import jax

        mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("model",))
        spec = jax.sharding.PartitionSpec(*(None for _ in shape[:-1]), "model")
        layout = jax.sharding.NamedSharding(mesh, spec)
    else:  # ignored: neither tf.distribute nor torch passes one
        layout = keras.distribution.TensorLayout([*(None for _ in shape[:-1]), "model"])
    laid_out = fresh(cls)(shape, layout=layout)
    np.testing.assert_array_equal(to_numpy(laid_out), to_numpy(plain))
    if BACKEND == "jax":
        assert laid_out.sharding.is_equivalent_to(layout, len(shape))
    # The positional form Keras's base class documents keeps working.
    np.testing.assert_array_equal(to_numpy(fresh(cls)(shape, "float32")), to_numpy(plain))
