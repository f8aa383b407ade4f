"""The channel-neutral dialogue engine: a router per feature, state persisted per conversation."""
