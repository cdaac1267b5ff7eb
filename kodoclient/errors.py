"""The one error type SDK users catch, built from a failed gRPC call or a bad client config.

Raw `grpc.RpcError`s never leave the SDK: they are turned into a `KodoclientError` that
carries the status code, the node's public message, the catalog reason (`ErrorInfo`) and
the field violations (`BadRequest`) the node attached.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from kodosumi.errors import FieldViolation
from kodosumi.rpc.status import details_of


class KodoclientError(Exception):
    """A call failed. `code` is the gRPC status; `reason` the node's catalog reason, if any."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        violations: Sequence[FieldViolation] = (),
        method: str = "",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        self.method = method

    @classmethod
    def from_rpc(cls, error: grpc.RpcError, method: str) -> KodoclientError:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else "") or ""
        reason, violations = details_of(error)
        return cls(code, message, reason=reason, violations=violations, method=method)

    @property
    def code_name(self) -> str:
        return str(self.code.name)

    def __str__(self) -> str:
        label = self.code_name if not self.reason else f"{self.code_name}/{self.reason}"
        message = _headline(self.message, self.violations)
        lines = [f"{label}: {message}" if message else label]
        lines += [f"  {v.field}: {v.description}" for v in self.violations]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code_name}, reason={self.reason!r}, "
            f"message={self.message!r}, violations={list(self.violations)!r})"
        )


TLS_MISMATCH = "TLS_MISMATCH"
# What gRPC core says when a TLS client meets a plaintext server ...
_PLAINTEXT_SERVER = ("WRONG_VERSION_NUMBER", "wrong version number")
# ... and when a plaintext client meets a TLS server (it hangs up at the first bytes).
_TLS_SERVER = ("Socket closed", "Connection reset", "connection reset")


def explain_transport(error: KodoclientError, target: str, secure: bool) -> KodoclientError:
    """`error` with a TLS/plaintext mismatch said plainly (reason `TLS_MISMATCH`); any other
    error as it is. `secure` is whether this client spoke TLS."""
    if error.code != grpc.StatusCode.UNAVAILABLE or error.reason:
        return error
    raw = error.message
    if secure and any(sign in raw for sign in _PLAINTEXT_SERVER):
        plain = (
            f"{target} speaks plaintext, not TLS (it runs with --insecure): talk to it with "
            "--insecure (or $KODOSUMI_INSECURE=1), or serve it with TLS"
        )
    elif not secure and any(sign in raw for sign in _TLS_SERVER):
        plain = (
            f"{target} hung up at once: it most likely expects TLS (mTLS) while this client "
            "spoke plaintext (--insecure, $KODOSUMI_INSECURE, or a node.json saying so); "
            "leave plaintext off and give credentials (--ca/--cert/--key or koco login)"
        )
    else:
        return error
    return KodoclientError(error.code, f"{plain} [{raw}]", reason=TLS_MISMATCH, method=error.method)


class ConfigError(KodoclientError):
    """The client cannot even try: credentials missing (`NO_CREDENTIALS`) or inconsistent."""

    def __init__(self, message: str, *, reason: str = "BAD_CONFIG") -> None:
        super().__init__(grpc.StatusCode.FAILED_PRECONDITION, message, reason=reason)


def _headline(message: str, violations: Sequence[FieldViolation]) -> str:
    """The message without the violations a node already wrote into it (they follow, one a
    line, and are said once)."""
    listed = [f"{v.field}: {v.description}" for v in violations]
    if not listed or not all(item in message for item in listed):
        return message
    cut = min(message.index(item) for item in listed)
    return message[:cut].rstrip(" :;,") or message
