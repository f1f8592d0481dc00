"""Model schemas as data and the mapping of normalized parameters onto them."""
