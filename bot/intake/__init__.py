"""E-otinish-style appeal intake: the form, registration, deadlines, statuses, connectors."""
