"""Vectorised renderer of synthetic frontal chest radiographs with the 14 NIH findings and their masks.

Geometry lives in normalised coordinates ``x, y`` in ``[-1, 1]`` (image left = patient's right,
``y`` grows downwards), so one description renders at any size from 32 to 512 px. An image is an
*attenuation* map (soft tissue + bone - lung air + findings) turned into grey levels by a per-image
exposure curve, plus quantum noise. Everything is computed for a batch at once with numpy; a
finding is drawn only on the images that have it.

Every random choice is an input: :func:`sample_params` draws all per-image parameters from one
generator, and :func:`render` is a pure function of them (its pixel noise comes from a seed), so the
same seed gives the same bytes however the images are split between worker processes.

Findings (severity ``s`` in (0, 1] sets size *and* contrast; faint ones are genuinely hard):

==================  ==================================================================
Atelectasis         plate/wedge basal opacity, ipsilateral diaphragm raised (volume loss)
Cardiomegaly        cardiothoracic ratio 0.52-0.68 (normal PA ~0.44, AP ~0.48: overlap)
Effusion            basal opacity with a lateral meniscus, blunted costophrenic angle
Infiltration        patchy ill-defined opacity, sometimes bilateral
Mass                lobulated opacity, radius 0.075-0.17 (>3 cm)
Nodule              round opacity, radius 0.025-0.085 (<3 cm; overlaps Mass at the cut)
Pneumonia           lobar/segmental airspace opacity bounded by a fissure
Pneumothorax        apical-lateral lucency without lung markings, visceral pleural line
Consolidation       dense homogeneous opacity with air bronchograms
Edema               bilateral perihilar haze ("bat wing") and basal septal (Kerley B) lines
Emphysema           hyperlucent, taller lungs, flattened diaphragm, sparse vessels
Fibrosis            reticular basal-peripheral pattern, mild volume loss
Pleural_Thickening  smooth pleural band (apical cap or lateral wall)
Hernia              retrocardiac air-fluid level above the diaphragm (cf. the normal gastric bubble)
==================  ==================================================================

Modules: :mod:`.scene` (coordinate grids, per-image anatomy, the :class:`Scene` whose layers the
findings paint), :mod:`.findings` (one renderer per finding, in the ordered :data:`FINDINGS`
table), :mod:`.radiograph` (parameters, batch rendering, compositing, the gallery figure).
"""
from paperkit.data.phantom.findings import FINDINGS, Renderer
from paperkit.data.phantom.radiograph import (
    DEVICE_ECG,
    DEVICE_LINE,
    DEVICE_TUBE,
    MAX_SIZE,
    MIN_SIZE,
    check_size,
    plot_finding_gallery,
    render,
    sample_params,
    take,
)
from paperkit.data.phantom.scene import N_UNIFORMS, Anatomy, Cases, Scene

__all__ = [
    "DEVICE_ECG", "DEVICE_LINE", "DEVICE_TUBE", "FINDINGS", "MAX_SIZE", "MIN_SIZE", "N_UNIFORMS",
    "Anatomy", "Cases", "Renderer", "Scene", "check_size", "plot_finding_gallery", "render",
    "sample_params", "take",
]
