"""The in-class competition: teams submit predictions, leaderboards rank them, grades follow.

A competition lives in the course as `competitions/<name>/`: `competition.toml` (the
spec: metric, times, daily cap, final selections, teams, grade mapping), the hidden
`solution.csv` (id, targets, Usage = Public / Private / Ignored) and `data/` for students.
Submissions, accepted or rejected, go into the course gradebook.

One module per step: `spec` (the TOML), `solution` (hidden truth and code inputs),
`intake` (checking a CSV), `metrics` (scikit-learn), `predictor` (notebooks defining
`predict(X)`, run in the sandbox), `teams` (from the roster), `store` (SQLite),
`leaderboard` (public / private boards and their HTML page), `grades` (board -> percent),
`bulk` (folders, zips, LMS downloads) and `compete` (the verbs the CLI wraps).
"""
