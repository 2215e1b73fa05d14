"""Datasets: the embedded benchmark, loaders for NIH ChestX-ray14 / CheXpert / MIMIC-CXR-JPG, the image cache."""
