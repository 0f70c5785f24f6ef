"""The pilot: an on-prem service where people confirm or correct HTR readings.

``fusionbrain serve`` (:mod:`fusionbrain.serve.cli`) runs :mod:`fusionbrain.serve.app`
(FastAPI) over a SQLite store (:mod:`fusionbrain.serve.store`); corrections feed
``fusionbrain train --from-corrections`` (:mod:`fusionbrain.serve.finetune`).
"""
