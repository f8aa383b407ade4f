"""Estu: the dialogue, channels, intake, operators, web and storage."""

__version__ = "0.1.0"
