"""Users, login sessions, API tokens, credits, rate limits and system stats."""
