"""MIP-004 hashes: what the purchaser and the seller both compute to bind a job to its input
and its output.

    input_hash  = sha256_hex(identifier_from_purchaser + ";" + JCS(input_data))
    output_hash = sha256_hex(identifier_from_purchaser + ";" + output)

JCS is RFC 8785, by the `rfc8785` library (Trail of Bits): keys sorted by UTF-16 code units,
numbers in ECMAScript's shortest form (`1.0` is `1`, `1e21` is `1e+21`), strings with the
minimal escapes, UTF-8. MIP-004's reference code calls `canonicaljson`, which agrees on
objects of strings, integers and booleans but not on floats or keys outside the BMP; the
MIP's text names RFC 8785, so the gateway follows the text (docs/gateway.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

__all__ = ["CanonicalizationError", "canonical_json", "input_hash", "output_hash"]

CanonicalizationError = rfc8785.CanonicalizationError


def canonical_json(value: Any) -> str:
    """RFC 8785 canonical JSON of `value` (raises CanonicalizationError for NaN, infinities,
    integers beyond 2^53 and lone surrogates: JCS cannot express them)."""
    return rfc8785.dumps(value).decode("utf-8")


def _hash(identifier_from_purchaser: str, payload: str) -> str:
    return hashlib.sha256(f"{identifier_from_purchaser};{payload}".encode()).hexdigest()


def input_hash(input_data: Any, identifier_from_purchaser: str) -> str:
    return _hash(identifier_from_purchaser, canonical_json(input_data))


def output_hash(output: str, identifier_from_purchaser: str) -> str:
    return _hash(identifier_from_purchaser, output)
