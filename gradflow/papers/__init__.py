"""The papers gradflow simulates: one package per paper, each file with one role.

``papers/<paper>/`` holds, in this import order (a file imports only those before it and the
engine; ``tests/test_layering.py`` checks it):

1. ``data.py``       the model's input: a frozen dataclass (``<P>Data`` from ``make_dataset``
                     or ``<P>Task`` from ``make_task``); random constructors take ``rng`` last.
2. ``theory.py``     the paper's predictions (phase times, bands, rates, max-margin limits) as
                     functions of the data; it never imports the model (a prediction that needs
                     one takes it as an argument).
3. ``model.py``      forward pass, loss, closed-form gradient and observables: the contract of
                     :class:`gradflow.Model`; it never integrates a flow.
4. ``protocol.py``   the paper's training and inference procedures, with its solver defaults
                     declared once in ``SOLVER``.
5. ``claims.py``     the claims ledger (:mod:`gradflow.claims`): ``RUNS`` of the protocol and
                     ``CLAIMS``, each a statement, its source in the paper, a status and a check
                     with its expected value and tolerance; no ``simulate`` call of its own.
6. ``experiment.py`` the CLI experiments: parameters, build, train (through the protocol; no
                     ``simulate`` call of its own), summarize, report.
7. ``figures.py``    ``draw(out)``: the figures, from a run folder only.

A paper without a CLI experiment has the first three. The ``__init__`` of each paper re-exports
its public names. The engine (every module directly under ``gradflow/`` except ``registry.py``,
``cli.py`` and ``sweep.py``) never imports a paper. This package imports nothing.
"""
