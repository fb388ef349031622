"""JSON that every reader accepts: Python's json writes inf and nan as `Infinity` / `NaN`, which
the JSON standard (and so jq, JavaScript's JSON.parse, most other languages) refuses.

A measure that is not finite (the PSNR of two identical videos is infinite) is written as null,
as a measure that could not be taken is; the text report shows `inf`.
"""
from __future__ import annotations

import json
import math
import numbers
from typing import Any


def finite_or_null(value: Any) -> Any:
    """`value` with every float that is not finite, at any depth of dicts, lists and tuples, as None
    (numpy's numbers become Python's)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
        return int(value)   # numpy's integers
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def dumps_standard(value: Any, **kwargs: Any) -> str:
    """json.dumps with non-finite floats as null (allow_nan=False: a value the walk missed fails
    here instead of writing invalid JSON)."""
    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)
