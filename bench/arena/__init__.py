"""The arena: blind pairwise human votes (`bench rate`) and Bradley–Terry / Elo ratings from them.

votes.py (votes.jsonl, fsynced), pairs.py (which pair next), app.py/cli.py (the local web page),
ratings.py (the estimator), report.py (summary columns and the report section).
"""
