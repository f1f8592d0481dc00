"""Summary tables, plots and the HTML report."""
