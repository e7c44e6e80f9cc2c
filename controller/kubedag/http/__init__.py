"""HTTP adapter: outgoing calls (webhook and Slack notifications, the built-in ``http`` sensor check)."""
