"""Shared set-up: one Keras backend per process, named in pytest's header."""

import keras


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend: {keras.backend.backend()}"
