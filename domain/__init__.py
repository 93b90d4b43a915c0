"""The vocabulary every layer shares: ids, errors, mail and account models. Imports nothing
of the project, so any layer may import it."""
