"""Opaque ids for the service layer's own rows (tenants, keys, accounts, requests)."""

from __future__ import annotations

from adapters.ids import is_valid_id, new_id

__all__ = ["is_valid_id", "new_id"]
