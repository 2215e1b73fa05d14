"""The one training loop (:mod:`.loop`, eq. 1 step by step) and its machinery: the run's state (model,
optimiser, generators, validation, resume: :mod:`.state`), checkpoints, inference, stored
predictions, and independent runs in parallel processes (:mod:`.workers`)."""
