"""Errors raised by the router.

::

    RouterError
    └── RangeUnavailableError   no leader answered within the retry budget (carries a code)
"""

from __future__ import annotations


class RouterError(Exception):
    """Base class of router errors."""


class RangeUnavailableError(RouterError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
