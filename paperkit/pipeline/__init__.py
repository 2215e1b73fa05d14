"""The steps the notebooks call (:mod:`.experiment`), each resumable: what names a run
(:mod:`.specs`), the clean-label ceiling, the teaching ablations, relabel and localisation scoring,
the deviations from the paper, and the plan of every run a profile trains (:mod:`.plan`)."""
