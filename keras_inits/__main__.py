"""``python -m keras_inits``: the ``keras-inits`` command."""

from keras_inits.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
