"""Deferred initialization: build a model without drawing its weights, then load or draw each once.

Most large models are built and then loaded: every weight is drawn with its
initializer, then overwritten by the checkpoint. ``deferred()`` builds with
no initializer running (Keras's ``StatelessScope(initialize_variables=False)``
underneath: each variable has its shape, dtype, initializer and, under
``keras.distribution``, its layout, but no value), and ``materialize`` then
gives each variable its value once: from a checkpoint where it has one,
drawn with its own initializer where not.

What this module must never do: hand out a placeholder as a value (a
deferred variable used before ``materialize`` raises, on every backend;
Keras alone returns a fresh draw on torch, so a load into it is silently
lost), gather a sharded value whole on one device, or leave a model half
loaded (everything is read and checked before anything is assigned).

Keras internals used here, checked on Keras 3.15.1 (every backend) and
3.14.0 (JAX): each backend's ``Variable._initialize`` /
``_initialize_with_initializer``, the ``_value``, ``_initializer``,
``_layout``, ``_shape`` and ``_dtype`` attributes, the global list of
uninitialized variables, the stateless and symbolic scope flags,
``saving_lib.load_weights_only`` and ``H5IOStore.get``. The functions that
call them sit in the "Keras internals" section below; the guard sets the
variable attributes. The one difference between those versions, whether
Keras hands a JAX variable's layout to its initializer, is
``keras_inits._compat.keras_passes_layout``; the module-level helpers over
those internals live in ``keras_inits._compat`` ("Deferred variables").
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np

from keras_inits import _compat
from keras_inits._base import derive_seed
from keras_inits._validation import check_seed

__all__ = ["MaterializeReport", "deferred", "materialize"]

_SUFFIXES = (".keras", ".weights.h5")


@dataclasses.dataclass(frozen=True)
class MaterializeReport:
    """What ``materialize`` did, by variable path.

    Attributes:
        loaded: The variables given their checkpoint's value, in the model's order.
        drawn: The deferred variables drawn with their own initializer (none
            in the checkpoint), in the model's order.
        unmatched: Checkpoint entries that matched no variable (file entries
            as ``layers/<name>/vars/<i>``); non-empty only with
            ``allow_unmatched=True``.
    """

    loaded: tuple[str, ...]
    drawn: tuple[str, ...]
    unmatched: tuple[str, ...]


# ----- Keras internals -------------------------------------------------------------


def _is_deferred(variable: Any) -> bool:
    return getattr(variable, "_value", None) is None and isinstance(
        getattr(variable, "_initializer", None), _Deferred
    )


def _set_value(variable: Any, value: Any) -> None:
    """The backend's own way to give a variable with no value its first value."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.init_scope():
            variable._initialize(value)
    else:
        variable._initialize(value)
    _settle(variable)


def _draw(variable: Any, initializer: Any) -> None:
    """The backend's own way to draw a variable (JAX: sharded at birth by its layout)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.init_scope():
            variable._initialize_with_initializer(initializer)
    elif backend == "jax" and _layout_of(variable) is not None:
        _draw_sharded(variable, initializer)
    else:
        variable._initialize_with_initializer(initializer)
    _settle(variable)


def _draw_sharded(variable: Any, initializer: Any) -> None:
    """JAX, a variable with a layout: each device draws its own part, on every Keras version."""
    import jax

    layout = _layout_of(variable)
    sharding = getattr(layout, "backend_layout", layout)
    shape, dtype = variable._shape, variable._dtype
    if _takes_layout(initializer):
        if _compat.keras_passes_layout():
            variable._initialize_with_initializer(initializer)  # its own call, explicit axes
        else:  # the layout Keras would pass: the initializer draws its value sharded
            variable._initialize(initializer(shape, dtype=dtype, layout=sharding))
        return
    # Keras draws such an initializer whole on one device below 250 MiB, then
    # distributes it; compiled with its output sharding, each device draws its part.
    try:
        value = jax.jit(lambda: initializer(shape, dtype=dtype), out_shardings=sharding)()
    except jax.errors.JAXTypeError:  # not traceable (NumPy inside): Keras's own path
        variable._initialize_with_initializer(initializer)
    else:
        variable._initialize(value)


def _takes_layout(initializer: Any) -> bool:
    try:
        return "layout" in inspect.signature(initializer).parameters
    except (TypeError, ValueError):
        return False


def _settle(variable: Any) -> None:
    """A variable with its value: Keras's state after a deferred draw, our hooks gone."""
    variable._initializer = None
    variable.__dict__.pop("assign", None)


def _undo(variable: Any, guard: _Deferred) -> None:
    """Back to deferred: what ``materialize`` does to each variable it set when it fails."""
    variable._value = None
    variable._initializer = guard
    variable.assign = _first_assign(variable)


def _layout_of(variable: Any) -> Any:
    return getattr(variable, "_layout", None)


@contextlib.contextmanager
def _recording_h5_reads(requested: set[str], entries: set[str]) -> Iterator[None]:
    """Records which groups Keras's loader reads, and every dataset in the file."""
    from unittest import mock  # here: importing keras_inits stays quick

    H5IOStore = _compat.h5_io_store()
    original = H5IOStore.get

    def get(self: Any, path: str) -> Any:
        if not entries:
            self.h5_file.visititems(
                lambda name, item: entries.add(name) if hasattr(item, "shape") else None
            )
        result = original(self, path)
        group = self._h5_entry_group
        if hasattr(group, "name"):
            requested.add(group.name.lstrip("/"))
        return result

    with mock.patch.object(H5IOStore, "get", get):
        yield


# ----- the guard ------------------------------------------------------------------


class _Deferred:
    """Stands where a deferred variable's initializer was (``variable._initializer``).

    Keras returns ``initializer(shape)`` as the value of a variable that has
    none. Inside shape inference (a symbolic scope: only shapes come out)
    this returns zeros, which cost nothing there; anywhere else it raises.
    """

    def __init__(self, initializer: Any, path: str, strategy: Any = None) -> None:
        self.initializer = initializer
        self.path = path
        self.strategy = strategy  # TensorFlow: the tf.distribute strategy it was built under

    def __call__(self, shape: Any, dtype: Any = None, **kwargs: Any) -> Any:
        if _compat.in_symbolic_scope():
            return keras.ops.zeros(shape, dtype=dtype)
        raise ValueError(
            f"Variable {self.path!r} is deferred: it was built inside `keras_inits.deferred()` "
            "and has no value yet. Call `keras_inits.materialize(model)` first (with "
            "`weights=` to load a checkpoint); Keras would otherwise hand out a fresh draw "
            "in its place."
        )


class _DeferredScope(keras.StatelessScope):
    """A stateless scope that defers initializers and keeps what is assigned inside it."""

    def __init__(self) -> None:
        super().__init__(initialize_variables=False)
        self.assigned: dict[int, tuple[Any, Any]] = {}

    def add_update(self, update: Any) -> None:
        super().add_update(update)
        variable, value = update
        self.assigned[id(variable)] = (variable, value)


_STAGED = "_keras_inits_staged"  # a value assigned inside deferred(), loaded by materialize


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A scope in which models are built without running any initializer.

    Every variable created inside has its shape, dtype, initializer and (on
    JAX under ``keras.distribution``) its layout, but no value, until
    ``materialize`` loads it from a checkpoint or draws it. Using it before
    (calling the model, ``get_weights``, ``save``, reading ``.value``) raises
    an error that says to call ``materialize``. Shape inference works, so
    functional models and keras-hub constructors build as usual.

    A value assigned inside the scope (a ``load_weights`` inside
    ``from_preset``, say) is kept for ``materialize`` to load; an assignment
    to a variable created outside the scope is applied when the scope closes.
    After the scope, assigning a deferred variable (``load_weights``, say)
    gives it its value, the backend's own way, as ``materialize`` would
    (without its checks and report).

    Raises:
        ValueError: If opened inside another ``deferred()`` or any
            ``keras.StatelessScope``.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras_inits import deferred, materialize
        >>> with deferred():
        ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="out")],
        ...                              name="mlp")
        >>> tuple(model.get_layer("out").kernel.shape)
        (4, 3)
        >>> materialize(model, seed=0).drawn
        ('mlp/out/kernel', 'mlp/out/bias')
    """
    if _compat.in_stateless_scope():
        raise ValueError(
            "`keras_inits.deferred()` cannot open inside another `deferred()` scope or a "
            "`keras.StatelessScope`: variables created there are deferred already. "
            "Received: an open stateless scope"
        )
    before = {id(v) for v in _compat.uninitialized_variables()}
    scope = _DeferredScope()
    failed = True
    try:
        with scope:
            yield
        failed = False
    finally:
        created = [
            v
            for v in _compat.uninitialized_variables()
            if id(v) not in before and getattr(v, "_value", True) is None
        ]
        _compat.forget_uninitialized(created)
        _guard(created)  # even after an error: none of them may be drawn behind the user's back
        ours = {id(v) for v in created}
        for key, (variable, value) in scope.assigned.items():
            if key in ours:
                setattr(variable, _STAGED, value)
            elif not failed:
                variable.assign(value)  # created outside: applied, as outside any scope


def _guard(variables: list[Any]) -> None:
    backend = keras.backend.backend()
    distribution = keras.distribution.distribution() if backend == "jax" else None
    strategy = None
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    for variable in variables:
        if distribution is not None and _layout_of(variable) is None:
            variable._layout = distribution.get_variable_layout(variable)
        variable._initializer = _Deferred(variable._initializer, variable.path, strategy)
        variable.assign = _first_assign(variable)


def _first_assign(variable: Any) -> Any:
    """``variable.assign`` while deferred: the first value, set the backend's own way.

    Keras's own ``assign`` fails on a deferred variable on TensorFlow and writes
    into a throwaway placeholder on torch; this makes ``load_weights`` (or any
    assignment) after ``deferred()`` give the variable its value on every
    backend, placed with its layout on JAX.
    """

    def assign(value: Any) -> Any:
        if _compat.in_stateless_scope() or not _is_deferred(variable):
            return type(variable).assign(variable, value)
        array = _as_array(value)
        expected = tuple(int(d) for d in variable.shape)
        if tuple(array.shape) != expected:
            raise ValueError(
                f"The value assigned to deferred variable {variable.path!r} must have its shape "
                f"{expected}. Received: value.shape={tuple(array.shape)}"
            )
        with _strategy_scope(variable._initializer):
            _set_value(variable, _placed(variable, array))
        variable.__dict__.pop(_STAGED, None)
        return value

    return assign


# ----- materialize ------------------------------------------------------------------


def _variables(layer: Any) -> list[Any]:
    seen: set[int] = set()
    result = []
    for variable in [*layer.variables, *layer.weights]:
        if id(variable) not in seen:
            seen.add(id(variable))
            result.append(variable)
    return result


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(keras.ops.convert_to_numpy(value))


def _check_shape(variable: Any, array: np.ndarray, source: str) -> None:
    expected = tuple(int(d) for d in variable.shape)
    if tuple(array.shape) != expected:
        raise ValueError(
            f"`weights` must match the model's shapes: {source} has shape "
            f"{tuple(array.shape)} for variable {variable.path!r} of shape {expected}. "
            f"Nothing was loaded. Received: weights[{variable.path!r}].shape={tuple(array.shape)}"
        )


def _plan_from_mapping(
    variables: list[Any], weights: Mapping[str, Any]
) -> tuple[dict[int, np.ndarray], list[str]]:
    by_path = {v.path: v for v in variables}
    plan: dict[int, np.ndarray] = {}
    unmatched = []
    for key, value in weights.items():
        if not isinstance(key, str):
            raise TypeError(
                "`weights` must map variable paths (str) to arrays. "
                f"Received: a key {key!r} of type {type(key).__name__}"
            )
        variable = by_path.get(key)
        if variable is None:
            unmatched.append(key)
            continue
        array = _as_array(value)
        _check_shape(variable, array, "the mapping")
        plan[id(variable)] = array
    return plan, unmatched


def _plan_from_file(
    layer: Any, variables: list[Any], path: str
) -> tuple[dict[int, Any], list[str]]:
    """Keras's own loader walks the file, with every ``assign`` recorded, not applied."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"`weights` must be an existing .keras or .weights.h5 file. Received: weights={path!r}"
        )
    import zipfile

    if path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"`weights` must be a valid .keras archive. Received: weights={path!r}")
    plan: dict[int, np.ndarray] = {}

    def recorder(variable: Any) -> Any:
        def assign(value: Any) -> Any:
            array = _as_array(value)
            _check_shape(variable, array, "the checkpoint")
            plan[id(variable)] = array
            return value

        return assign

    requested: set[str] = set()
    entries: set[str] = set()
    patched: list[tuple[Any, Any]] = []  # (variable, the instance's own assign or None)
    try:
        for variable in variables:
            patched.append((variable, variable.__dict__.get("assign")))
            variable.assign = recorder(variable)
        with _recording_h5_reads(requested, entries):
            _compat.load_weights_only(layer, path)
    except ValueError as error:
        raise ValueError(
            f"`weights` must be a checkpoint of this architecture ({layer.name!r}); Keras's "
            f"loader could not place it: {error} Nothing was loaded. Received: weights={path!r}"
        ) from error
    finally:
        for variable, own in patched:
            if own is None:
                del variable.assign
            else:
                variable.assign = own
    unmatched = sorted(name for name in entries if name.rsplit("/", 1)[0] not in requested)
    return plan, unmatched


def _drawing_initializer(initializer: Any, seed: Any, index: int) -> Any:
    """``initializer``, re-seeded with sub-seed ``index`` of an int ``seed``."""
    if seed is None or not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    if "seed" not in config:
        return initializer  # deterministic (zeros, ones, identity, ...)
    return type(initializer).from_config({**config, "seed": derive_seed(seed, index)})


def _placed(variable: Any, array: np.ndarray) -> Any:
    """The host array as the variable's dtype, on its layout's devices (JAX) or its device."""
    dtype = keras.backend.standardize_dtype(variable._dtype)
    layout = _layout_of(variable)
    if keras.backend.backend() == "jax" and layout is not None:
        import jax
        import jax.numpy as jnp

        sharding = getattr(layout, "backend_layout", layout)
        host = array if array.dtype == jnp.dtype(dtype) else array.astype(jnp.dtype(dtype))
        return jax.device_put(host, sharding)  # each device gets its own slice only
    if keras.backend.backend() == "tensorflow" and array.dtype.name == dtype:
        return array  # tf.Variable copies it once; a tensor first would copy twice
    return keras.ops.convert_to_tensor(array, dtype=dtype)


def materialize(
    model: keras.layers.Layer,
    weights: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    seed: Any = None,
    allow_unmatched: bool = False,
) -> MaterializeReport:
    """Gives every deferred variable of ``model`` its value: loaded, or drawn.

    With ``weights``, each variable the checkpoint has is loaded from it
    (placed with its layout on JAX, never gathered whole on one device);
    every deferred variable it lacks (and all of them without ``weights``) is
    drawn with its own initializer. It works on any layer of a deferred
    model, so a backbone can be loaded from its checkpoint and the head
    drawn after.

    A model or layer that is not deferred is loaded as Keras's
    ``load_weights`` would load it (validated first, like the rest), and
    nothing is drawn: without ``weights`` the call does nothing and reports
    so. Everything is read and checked before anything is assigned, so an
    error leaves the model as it was.

    Args:
        model: A model or layer, built (inside ``deferred()`` or not).
        weights: A ``.weights.h5`` file, a ``.keras`` file (its weights), a
            mapping from variable path (``variable.path``) to array, or None.
        seed: For the draws: an int (draw i of the model's variables uses a
            sub-seed hashed from (seed, i), so the same seed gives the same
            values), or None (each initializer as built: a seeded one gives
            what a normal build gives).
        allow_unmatched: Report checkpoint entries that match no variable
            instead of raising (Keras's loading raises on what it cannot place).

    Returns:
        A ``MaterializeReport`` (loaded, drawn, unmatched: variable paths).

    Raises:
        TypeError: If ``model`` is not a Keras layer or ``weights`` is
            neither a path, a mapping nor None.
        ValueError: If ``model`` is not built, the checkpoint does not fit
            (names, shapes, entries that match nothing) or ``weights`` is
            not a .keras or .weights.h5 path.
        FileNotFoundError: If the ``weights`` file does not exist.

    Example:
        >>> import keras
        >>> import numpy as np
        >>> from keras_inits import deferred, materialize
        >>> with deferred():
        ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="out")],
        ...                              name="mlp")
        >>> report = materialize(model, {"mlp/out/kernel": np.ones((4, 3))}, seed=0)
        >>> report.loaded, report.drawn
        (('mlp/out/kernel',), ('mlp/out/bias',))
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"`model` must be a Keras model or layer. Received: model={type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            "`model` must be built (inside `keras_inits.deferred()`: give it a `keras.Input` "
            f"or call `model.build(input_shape)`). Received: model={model.name!r} (not built)"
        )
    seed = check_seed(seed)
    if not isinstance(allow_unmatched, bool):
        raise TypeError(
            f"`allow_unmatched` must be a bool. Received: allow_unmatched={allow_unmatched!r}"
        )
    if _compat.in_stateless_scope():
        raise ValueError(
            "`keras_inits.materialize` must be called after the `deferred()` scope closes. "
            "Received: a call inside a stateless scope"
        )
    variables = _variables(model)

    # Plan: every value read and checked, nothing assigned yet.
    plan: dict[int, Any] = {}
    unmatched: list[str] = []
    if weights is None:
        pass
    elif isinstance(weights, Mapping):
        plan, unmatched = _plan_from_mapping(variables, weights)
    elif isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not path.endswith(_SUFFIXES):
            raise ValueError(
                f"`weights` must be a path ending in one of {tuple(sorted(_SUFFIXES))}, a "
                f"mapping of arrays by variable path, or None. Received: weights={path!r}"
            )
        plan, unmatched = _plan_from_file(model, variables, path)
    else:
        raise TypeError(
            "`weights` must be a .keras or .weights.h5 path, a mapping of arrays by variable "
            f"path, or None. Received: weights={type(weights).__name__}"
        )
    if unmatched and not allow_unmatched:
        shown = ", ".join(repr(name) for name in unmatched[:5])
        more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
        raise ValueError(
            f"`weights` must match the variables of {model.name!r}: {len(unmatched)} "
            f"checkpoint entries match none ({shown}{more}). Nothing was loaded; pass "
            f"`allow_unmatched=True` to load the rest. Received: weights={_describe(weights)}"
        )
    for variable in variables:  # values assigned inside deferred() (from_preset's load)
        staged = variable.__dict__.get(_STAGED)
        if staged is not None and id(variable) not in plan and _is_deferred(variable):
            plan[id(variable)] = staged

    # Assign: deferred variables first (undone on failure), then loaded live ones.
    loaded, drawn, done = [], [], []
    try:
        for index, variable in enumerate(variables):
            if not _is_deferred(variable):
                continue
            guard = variable._initializer
            if id(variable) in plan:
                with _strategy_scope(guard):
                    _set_value(variable, _placed(variable, plan.pop(id(variable))))
                loaded.append(variable.path)
            else:
                initializer = _drawing_initializer(guard.initializer, seed, index)
                with _strategy_scope(guard):
                    _draw(variable, initializer)
                drawn.append(variable.path)
            done.append((variable, guard))
    except BaseException:
        for variable, guard in done:
            _undo(variable, guard)
        raise
    for variable, _ in done:
        variable.__dict__.pop(_STAGED, None)
    for variable in variables:
        if id(variable) in plan:  # a live variable: loaded as load_weights would
            variable.assign(plan.pop(id(variable)))
            loaded.append(variable.path)
    order = {v.path: i for i, v in enumerate(variables)}
    return MaterializeReport(
        loaded=tuple(sorted(loaded, key=order.__getitem__)),
        drawn=tuple(drawn),
        unmatched=tuple(unmatched),
    )


def _describe(weights: Any) -> str:
    if isinstance(weights, Mapping):
        return f"a mapping of {len(weights)} arrays"
    return repr(os.fspath(weights))


@contextlib.contextmanager
def _strategy_scope(guard: _Deferred) -> Iterator[None]:
    if guard.strategy is None:
        yield
    else:
        with guard.strategy.scope():
            yield
