"""One hierarchy for every error a user can cause; the CLI turns each into one clean message."""

from __future__ import annotations


class LmmError(Exception):
    """Base of all errors lmm reports to the user (exit code 1)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class FormulaSyntaxError(LmmError):
    """The formula text cannot be parsed; `span` is the (start, end) of the offending characters."""

    def __init__(self, message: str, text: str, span: tuple[int, int], hint: str | None = None):
        super().__init__(message, hint)
        self.text = text
        self.span = span


class ModelSpecError(LmmError):
    """The formula parses but does not describe a model we can fit with this data."""

    def __init__(self, message: str, hint: str | None = None, text: str | None = None,
                 span: tuple[int, int] | None = None):
        super().__init__(message, hint)
        self.text = text
        self.span = span


class DataError(LmmError):
    """The data file cannot be read or its values cannot be used."""


class NumericalError(LmmError):
    """The numbers went wrong during fitting (not a user mistake we could name more precisely)."""


class UsageError(LmmError):
    """Options that contradict each other (exit code 2, as for other usage errors)."""

    exit_code = 2
