"""Errors that oplearn reports to users as one clear line."""


class OplearnError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it.

    The command-line interface prints ``error: <message>`` and exits with status 2.
    """


class DataError(OplearnError):
    """A data file or array is missing, truncated, malformed or inconsistent."""


class ConfigError(OplearnError):
    """A configuration key is unknown, missing, or has the wrong type."""


class CheckpointError(OplearnError):
    """A checkpoint is missing, corrupt, or unsafe to load."""


class TrainingDiverged(OplearnError):
    """The training loss became NaN or infinite."""


class UsageError(OplearnError):
    """A command line that does not parse: unknown option, missing or malformed argument."""


class OutputError(OplearnError):
    """A destination that cannot be written: a folder where a file is expected, a file in the way, no permission."""


class OplearnWarning(UserWarning):
    """Something the user should know but that does not stop the work (the CLI prints ``warning: ...``)."""
