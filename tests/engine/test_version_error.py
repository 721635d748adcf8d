"""ZMQVersionError, pyzmq's exception for a feature the linked libzmq lacks, exists under the
same names (`zmq.ZMQVersionError`, `zmq.error.ZMQVersionError`) with the same shape, so code
that raises or catches it runs on the engine unchanged. The engine had no such name."""

from __future__ import annotations

import importlib
from typing import Any

from tests.engine.libkit import LIBS


@LIBS
def test_version_error_has_pyzmqs_shape(lib: Any) -> None:
    error_module = importlib.import_module(f"{lib.__name__}.error")
    assert error_module.ZMQVersionError is lib.ZMQVersionError
    assert issubclass(lib.ZMQVersionError, NotImplementedError)
    err = lib.ZMQVersionError("9.0", "Teleporting")
    assert (err.min_version, err.msg, err.version) == ("9.0", "Teleporting", lib.zmq_version())
    assert str(err) == f"Teleporting requires libzmq >= 9.0, have {lib.zmq_version()}"
    assert str(lib.ZMQVersionError("9.1")).startswith("Feature requires libzmq >= 9.1")
