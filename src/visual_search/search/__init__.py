"""Search-time decisions: the category filter and the one category classifier behind it."""
