"""One module per stage of the request path."""
