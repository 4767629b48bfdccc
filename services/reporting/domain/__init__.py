"""Reporting's pure model: facts from events, metric definitions, disclosure control, the board."""
