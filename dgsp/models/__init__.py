"""One module per model family; each reads top to bottom next to its paper."""
