"""OAuth2 mailboxes: apps per tenant, the hosted sign-in, and tokens kept fresh."""
