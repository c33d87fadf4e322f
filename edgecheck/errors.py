"""The one error type users see.

Bad input (a file, an option, a dataset) raises ``EdgecheckError`` with a message
that names the file or option and what is wrong; the CLI and the pytest plugin
print the message without a traceback from deep inside numpy or TensorFlow.
"""


class EdgecheckError(ValueError):
    """A user-facing error: bad input, a missing file, an unavailable device."""
