"""Running the bot: a webhook WSGI app under waitress or long polling, both fed through an
update inbox in the database so every accepted update is applied exactly once.

Layout: ``secrets`` (the webhook secret), ``inbox`` (the exactly-once inbox),
``runner`` (python-telegram-bot's loop on its own thread), ``wsgi`` (the HTTP
side), ``polling`` (getUpdates into the inbox), ``webhook_admin``
(setWebhook & co), ``logging_filters`` (no token or secret in any log line),
``service`` (wiring it all for ``habitreward serve``).
"""
