"""Background event work: the webhook dispatcher that drains the outbox."""
