"""Natural-language understanding: language, normalisation, intents, entities, PII."""
