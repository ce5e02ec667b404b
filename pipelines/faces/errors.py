"""The one error of the face pipeline a person sees."""


class FaceError(ValueError):
    """A request about faces that cannot be done as asked; the message says why."""
