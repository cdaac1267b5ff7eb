"""The auth provider's catalog errors (reasons listed in `kodosumi.errors.CATALOG`)."""

from __future__ import annotations

from kodosumi.errors import InvalidArgument, NotFound, Unauthenticated


class EnrollmentTokenInvalid(Unauthenticated):
    default_reason = "ENROLLMENT_TOKEN_INVALID"

    def __init__(self) -> None:
        # One message for every cause: a guesser learns nothing about which tokens exist.
        super().__init__("the enrollment token is unknown, used up or expired")


class UserNotFound(NotFound):
    default_reason = "USER_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"no user {name!r}", metadata={"user": name})


class GroupNotFound(NotFound):
    default_reason = "GROUP_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"no group {name!r}", metadata={"group": name})


class CertificateNotFound(NotFound):
    default_reason = "CERTIFICATE_NOT_FOUND"

    def __init__(self, serial: str) -> None:
        super().__init__(
            f"the auth provider issued no certificate with serial {serial}",
            metadata={"serial": serial},
        )


def bad_csr(description: str) -> InvalidArgument:
    return InvalidArgument.field("csr", description)
