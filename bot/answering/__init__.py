"""Answering: deciding answer / partial / abstain from signals calibrated on the index itself
(`abstention`), and composing the extractive answer (`bot.answer`)."""
