"""Errors that hfselect reports to the user as one clear line.

Every error raised on purpose by hfselect derives from :class:`HfSelectError`; the command line
prints ``hfselect: error: <message>`` for these and exits non-zero, without a traceback. Messages
name the thing that is wrong and, where possible, say what to do about it.
"""


class HfSelectError(Exception):
    """Base class of the errors hfselect reports as one line."""


class RepositoryError(HfSelectError):
    """The model repository store cannot be opened, read or written."""


class HubError(HfSelectError):
    """The Hugging Face Hub cannot be reached or refused a request."""


class DatasetError(HfSelectError):
    """A dataset cannot be loaded or has no usable columns or splits."""


class ModelLoadError(HfSelectError):
    """A model cannot be loaded (unsupported architecture, unsafe weights, broken config)."""


class InvalidValueError(HfSelectError, ValueError):
    """An option has a value outside its range (e.g. ``epochs=0``); a ``ValueError`` for API callers."""


class InvalidTypeError(HfSelectError, TypeError):
    """An argument has the wrong type (e.g. ``recall(123)``); a ``TypeError`` for API callers."""


class RepositoryReadOnlyError(RepositoryError):
    """The model repository file (or its folder) cannot be written."""
