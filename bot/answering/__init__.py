"""Answering: deciding answer / partial / abstain from signals calibrated on the index itself
(`abstention`), and composing the extractive answer (`compose`) and the optional LLM rewrite behind its citation guard (`generate`)."""
