"""The one error type users see.

Bad input (a file, an option, a dataset) raises ``EdgecheckError`` with a message
that names the file or option and what is wrong; the CLI and the pytest plugin
print the message without a traceback from deep inside numpy or TensorFlow.
"""


class EdgecheckError(ValueError):
    """A user-facing error: bad input, a missing file, an unavailable device."""


def one_line(text: str) -> str:
    """An error message as the one line it is printed as: control characters from user input (a newline or a
    vertical tab in a file name) are shown escaped, never as a line break."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
