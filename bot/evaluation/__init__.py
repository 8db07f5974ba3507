"""Evaluation: scoring answers against question sets, the naive baseline every table compares with,
scratch indexes built from a folder of documents, and Markdown/text turned into PDFs the way an
organizer would upload them."""
