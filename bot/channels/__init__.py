"""Channel adapters: each only translates between its platform and the neutral message model
(``bot/messages.py``); the dialogue is the same everywhere."""
