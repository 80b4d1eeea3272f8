"""Rate limits and money budgets: one store interface, three backends."""
