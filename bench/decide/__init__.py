"""decide: the recommendation (which group to choose) and the statistics it rests on.

One pure rule, one place: summary tables and per-image scores in, a Verdict out. The report, the
CLI (`bench recommend`, the end of `bench run` and `bench report`), the notebook and a later
adaptive loop all call `bench.decide.verdict.decide`. Nothing here reads or writes files except
`bench.decide.io` (verdict.json), and nothing here imports report, gate or cli.
"""
