"""Exceptions that carry a message meant for the visitor.

Pure functions in `demos/` raise these (they know nothing of Gradio); `gallery.ui.user_errors`
turns them into `gr.Error` toasts with the same words.
"""


class InputError(ValueError):
    """The request cannot be served as sent (empty prompt, no image, a bad number...)."""


class ModelUnavailable(RuntimeError):
    """A model's weights are missing or failed to load; the message says what to do."""
