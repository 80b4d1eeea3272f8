"""The learned router: features, training, the router file, and cost-quality evaluation."""
