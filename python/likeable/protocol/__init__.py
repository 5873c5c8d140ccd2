"""The evaluation protocol: data in, an embedder, splits, metrics, the evaluation pipeline,
descriptions, the multi-session simulation and the report. It calls the engine
(encoder, index, preferences); the engine never imports it."""
