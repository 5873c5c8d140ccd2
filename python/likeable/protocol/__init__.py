"""The evaluation protocol, above the engine (encoder, index, preferences); the engine never imports it.

Data in: ``datasets`` (loaders, :class:`PreferenceDataset`), ``synthetic`` (the one generator of
synthetic data with a known answer), ``embed`` (:class:`OnnxEmbedder`). The pipeline:
``evaluate`` (:class:`EvalConfig`, :func:`evaluate` and steps 1-4: split, embed, encoder,
prediction), ``features`` (step 5), ``personalize`` (step 6), ``simulate`` (step 7 and the
session simulation), built on ``split``, ``metrics`` and ``describe``. Out: ``results`` (the
typed records every step returns), ``report`` (:class:`Report`: JSON, HTML, summary).
``bench`` measures this machine's kernels.
"""
