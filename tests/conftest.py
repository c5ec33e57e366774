"""Shared set-up: one Keras backend per process, named in pytest's header."""

import keras


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend: {keras.backend.backend()}"


# Scripts that test_scaleout.py runs in fresh processes: importing one (as
# --doctest-modules would) sets XLA_FLAGS, logical devices or a backend.
collect_ignore = ["scaleout_jax.py", "scaleout_multiprocess.py", "scaleout_tf.py"]
