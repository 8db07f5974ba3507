"""The project's fake Discord: REST + gateway on 127.0.0.1 for the unmodified discord.py client."""
from .server import (  # noqa: F401
    CommandNotShown,
    ADMINISTRATOR,
    EPHEMERAL,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    FakeDiscord,
    Interaction,
    custom_ids,
    message_text,
    validate_message,
)
