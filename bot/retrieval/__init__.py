"""Retrieval stages after candidate search: passage context (`context`)."""
