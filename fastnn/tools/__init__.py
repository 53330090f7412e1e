"""Tooling on top of the public API: the ``fastnn`` command (:mod:`.cli`), the
examples it runs (:mod:`.examples`) and the benchmark (:mod:`.bench`)."""
