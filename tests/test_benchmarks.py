"""The benchmark scripts run (tiny sizes, one round); their timings are never asserted here."""

import os
import subprocess
import sys

import keras
import pytest
from helpers import import_keras_hub

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(name, *args):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.mark.slow
def test_sampling_benchmark_covers_every_registered_initializer():
    completed = run_script(
        "bench_sampling.py", "--size", "64", "--repeats", "1", "--draws", "1e4",
        "--no-memory", "--mlp-layers", "3",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    from keras_inits._registry import CLASSES

    for cls in CLASSES:
        assert f"| {cls.__name__} |" in completed.stdout or f"- {cls.__name__}:" in (
            completed.stdout
        ), cls.__name__
    assert "values beyond the bound" in completed.stdout


@pytest.mark.slow
def test_orthogonal_benchmark_runs():
    completed = run_script("bench_orthogonal.py", "--sizes", "16", "--repeats", "1", "--breakdown")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| LSTM: 4 blocks vs one | 16 | (16, 64) |" in completed.stdout


@pytest.mark.slow
def test_structured_benchmark_covers_its_seven_classes():
    completed = run_script("bench_structured.py", "--size", "64", "--repeats", "1", "--no-memory")
    assert completed.returncode == 0, completed.stderr[-3000:]
    for name in (
        "BlockOrthogonal",
        "DeltaOrthogonal",
        "Sparse (sparsity 0.1)",
        "ConvIdentity",
        "HadamardIdentity (out > in)",
        "ICNR",
        "Bilinear",
    ):
        assert f"| {name} |" in completed.stdout, name
    # Sparse against torch.nn.init.sparse_, on torch only, as a ratio in the same rounds.
    beside_torch = "Sparse (sparsity 0.1): time vs torch.nn.init.sparse_" in completed.stdout
    assert beside_torch == (keras.backend.backend() == "torch")


@pytest.mark.slow
def test_deferred_benchmark_prints_both_targets():
    completed = run_script(
        "bench_deferred.py", "--vocabulary", "64", "--width", "16", "--blocks", "2",
        "--repeats", "1", "--warmup", "0",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| deferred build + materialize(weights=) |" in completed.stdout
    assert "| deferred build / normal build |" in completed.stdout
    assert "| (deferred build + materialize) / (normal build + load_weights) |" in completed.stdout


# ----- _harness.block waits for every backend's asynchronous devices -------------


def harness():
    import importlib.util

    name = "benchmarks_harness_under_test"
    if name not in sys.modules:
        path = os.path.join(ROOT, "benchmarks", "_harness.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


class Calls:
    def __init__(self):
        self.made = []

    def __call__(self, *args):
        self.made.append(args)


def test_block_synchronizes_torch_cuda_and_tensorflow_accelerators(monkeypatch):
    import types

    block = harness().block
    torch_sync, tf_sync = Calls(), Calls()
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(synchronize=torch_sync))
    experimental = types.SimpleNamespace(sync_devices=tf_sync)
    fake_tf = types.SimpleNamespace(test=types.SimpleNamespace(experimental=experimental))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "tensorflow", fake_tf)

    class TorchTensor:  # what block reads of a torch tensor
        def __init__(self, cuda):
            self.is_cuda, self.device = cuda, "cuda:1" if cuda else "cpu"

    class TfTensor:
        __module__ = "tensorflow.python.framework.ops"

        def __init__(self, device):
            self.device = device

    on_gpu = TorchTensor(True)
    assert block([TorchTensor(False), (on_gpu,)])[1][0] is on_gpu
    assert torch_sync.made == [("cuda:1",)]
    block(TfTensor("/job:localhost/replica:0/task:0/device:CPU:0"))
    assert tf_sync.made == []
    block([TfTensor("/job:localhost/replica:0/task:0/device:GPU:0")])
    block(TfTensor("/job:worker/replica:0/task:0/device:TPU:3"))
    assert tf_sync.made == [(), ()]

    class JaxArray:
        waited = 0

        def block_until_ready(self):
            JaxArray.waited += 1

    block((JaxArray(), JaxArray()))
    assert JaxArray.waited == 2 and len(torch_sync.made) == 1


def test_block_accepts_this_backends_real_tensors():
    block = harness().block
    value = keras.ops.ones((3,))
    assert block(value) is value
    assert block([value, (value,)])[0] is value


@pytest.mark.slow
@pytest.mark.parametrize("backbone", [False, True], ids=["dense", "keras_hub_backbone"])
def test_lora_benchmark_runs(backbone):
    if backbone:
        import_keras_hub()  # a named skip on the Keras floor, which has no keras-hub
    completed = run_script(
        "bench_lora.py", "--size", "32", "--rank", "2", "--rounds", "1", "--hidden", "16",
        "--layers", "1", "--heads", "2", "--vocabulary", "32",
        *(() if backbone else ("--no-backbone",)),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    for method in ("keras enable_lora", "pissa, exact SVD", "pissa, niter=4"):
        assert f"| Dense (32, 32) | {method} |" in completed.stdout, method
    assert ("hidden 16: 6 kernels | pissa, exact SVD |" in completed.stdout) == backbone


@pytest.mark.slow
def test_mup_benchmark_runs():
    completed = run_script(
        "bench_mup.py", "--inputs", "8", "--width", "16", "--batch", "4",
        "--repeats", "1", "--warmup", "0",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    # Base widths w/8, w/4, w/2: every weight kind its own multiplier.
    for case in ("SGD (momentum 0.9), 5 groups", "Adam, 4 groups", "AdamW, 4 groups"):
        for step in ("train_on_batch", "optimizer.apply (eager)"):
            assert f"| {case} | {step} |" in completed.stdout, (case, step)
    assert completed.stdout.count("<= 1.1x") == 6
    for step in ("train_on_batch", "optimizer.apply (eager)"):  # the noise floor, not a target
        assert f"| Adam, control: plain vs plain | {step} |" in completed.stdout, step
