"""The Telegram bot: python-telegram-bot handlers over the engine. No SQL here."""
