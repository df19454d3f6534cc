"""Test kit for habitreward and its plugins: engines on throwaway databases, and (for bots)
an in-process stand-in for Telegram's Bot API."""
