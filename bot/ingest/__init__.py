"""Turning uploaded files into text: content sniffing (`sniff`) and sandboxed PDF extraction (`pdf`)."""
