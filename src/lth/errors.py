"""One exception type whose message is meant to be shown to the user as one line."""


class LTHError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
