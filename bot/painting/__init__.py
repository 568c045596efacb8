"""A job's whole path, in the order it runs: what was asked (request), the pictures taken in (intake), the
checks and the queue (service: prepare, then submit), and the way back to the owner (delivery). Every entry
point — `!stylize`, `/stylize paint`, the again buttons and the Tweak form, the message menus — goes through
`Painter.prepare` and `Painter.submit`; the bot owns the one Painter."""

from .service import Painter, Plan

__all__ = ["Painter", "Plan"]
