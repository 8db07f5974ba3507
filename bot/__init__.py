"""Union AI-provisions bot: answers members' questions about AI terms in entertainment labor
agreements, citing the exact passage and page. The core (ingest, index, retrieve, answer) never
imports discord; `bot.discord_app` is a thin shell over `bot.service.Service`."""

__version__ = "0.1.0"
