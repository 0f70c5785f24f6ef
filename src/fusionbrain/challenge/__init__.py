"""The challenge server for an organiser's own machine: participants' zip submissions run in
a bubblewrap sandbox on hidden test inputs, are scored with the project's scorer and ranked.

An organiser's folder (``fusionbrain challenge init DIR --data BUILT``)::

    DIR/config.json          limits, daily quota, public/private split seed and fraction
    DIR/split.json           the test keys of each part, per task (derived from the seed)
    DIR/challenge.sqlite     submissions, their status, failure reason, scores, log tails
    DIR/hidden/input/<TASK>/ the test inputs (mounted read-only at /input while a submission runs)
    DIR/hidden/true/         the truths (never mounted in a sandbox)
    DIR/zips/<sha256>.zip    submissions, content-addressed
    DIR/runs/<id>/           each run's collected predictions and full log tails

Torch-free: nothing here imports torch (a submission may, inside its sandbox).
"""
