"""Operating errors that reach a user as one line and an exit code, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a failed operation the user can act on. `str(exc)` is the one-line reason."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
