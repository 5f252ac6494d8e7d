"""The one exception type a user sees as a message rather than a traceback."""


class SeqriskError(Exception):
    """A problem with the input, the configuration or the lake that the user can fix; the message says how."""


class ModelFormatError(SeqriskError):
    """A model directory written by a version of seqrisk whose format this version cannot read."""
