"""The one error type users see: bad input, reported as a single line naming the allowed values."""


class ConfigError(ValueError):
    """Bad user input (unknown task, key or value; a layout that cannot fit the task)."""
