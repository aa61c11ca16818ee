"""What a training run is, without TensorFlow: :class:`TrainConfig`, the synthesis ranges of training and
evaluation, the user's basis prepared for training, and the network's outputs. :mod:`mrs_tf.nn.train` runs it;
:mod:`mrs_tf.nn.bundle` reads it back from a model's folder."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mrs_tf.core.errors import MRSError
from mrs_tf.physics.basis import DEFAULT_PROTOCOL, BasisSet
from mrs_tf.physics.metabolites import prior_means
from mrs_tf.physics.synth import SynthesisConfig
from mrs_tf.preprocess.spectra import DEFAULT_PPM_RANGE

__all__ = ["ADDED_PARAMETRIC_MM", "TrainConfig", "TRAINING_SYNTHESIS", "TRAINING_PRIOR_WIDENING", "prior_scale", "output_names",
           "combination_matrix", "load_training_basis", "UNKNOWN_PRIOR_MM", "healthy_priors", "evaluation_synthesis",
           "training_synthesis", "priors_text", "same_setting", "LR_SCHEDULES", "cosine_learning_rate",
           "HIGHPASS_HZ"]

#: How a run's learning rate moves: ``"cosine"`` anneals it over the run's epochs from ``learning_rate`` to 2 % of it
#: (the default since 2026-11-30: the same 40 epochs reach a validation loss of -1.075 instead of -1.016 and a test
#: MAPE 0.3-0.8 points lower on every major metabolite, benchmarks/RESULTS.md); ``"plateau"`` halves it when the
#: validation loss stalls (``ReduceLROnPlateau``; every run before).
LR_SCHEDULES = ("cosine", "plateau")

#: A width for ``TrainConfig.highpass_hz`` (Hz, FWHM of the Gaussian smoothing that the network's input has subtracted,
#: :class:`~mrs_tf.layers.HighPass`): 3-4 Hz lines keep ~80 % of their height, a baseline bump of 0.6 ppm ~5 %. Off
#: by default: five networks with it read their own spectra and the Philips volunteers no better than five without
#: (benchmarks/RESULTS.md, "2026-11-30, second")
HIGHPASS_HZ = 25.0


def cosine_learning_rate(epoch: int, epochs: int, learning_rate: float, floor: float = 0.02) -> float:
    """The learning rate of ``epoch`` (0-based) in a cosine anneal over ``epochs``: ``learning_rate`` at epoch 0,
    ``floor * learning_rate`` at the end."""
    phase = min(max(epoch / max(int(epochs), 1), 0.0), 1.0)
    return float(learning_rate) * (floor + (1.0 - floor) * 0.5 * (1.0 + np.cos(np.pi * phase)))

#: Training concentrations are drawn from the healthy-brain priors widened to [low * a, high * b]: networks then do
#: not pull abnormal values (tumour, stroke, low-NAA) toward healthy ones, and shrink less toward the prior mean.
TRAINING_PRIOR_WIDENING = (0.5, 1.3)


def _widened_priors(widening=TRAINING_PRIOR_WIDENING) -> dict:
    from mrs_tf.physics.metabolites import MM_NAME, METABOLITES, PRIORS_MM

    lo, hi = widening
    ranges = {name: m.prior_mm for name, m in METABOLITES.items()}
    ranges[MM_NAME] = PRIORS_MM
    return {name: (float(r[0]) * lo, float(r[1]) * hi) for name, r in ranges.items()}


#: Broad nuisance ranges for training (the sim-to-real gap: linewidth variability matters most), the parametric MM's
#: shape varied per spectrum (component amplitudes +-30 %, positions +-0.04 ppm, widths +-25 %, Gaussian to
#: Lorentzian: the spread between published MM parametrisations), lipid signals (0.9, 1.3, 2.0 ppm) up to the NAA
#: singlet's height and baselines up to +-0.3 of it (in vivo scans have both: with them a network trained on the
#: Philips basis moved from -13/-20 % to -2/-5 % on Ins/Glu of a real scan, benchmarks/invivo_vs_lcmodel.py), and
#: widened priors.
TRAINING_SYNTHESIS = SynthesisConfig(lorentz_hz=(1.0, 12.0), gauss_hz=(2.0, 14.0), shift_ppm=(-0.2, 0.2),
                                     phase0_deg=(-180.0, 180.0), phase1_deg_per_ppm=(-5.0, 5.0),
                                     baseline_amp=(-0.3, 0.3), lipid_amp=(0.0, 1.0),
                                     mm_amp_spread=0.3, mm_ppm_spread=0.04,
                                     mm_width_spread=0.25, mm_lorentz_fraction=(0.0, 1.0), priors=_widened_priors())


def training_synthesis(synthesis: dict | None = None) -> tuple[dict, list[str]]:
    """``(settings, given)``: a training run's synthesis settings (a dict of :class:`SynthesisConfig` fields) and the
    fields of ``synthesis`` that were used.

    A complete dict (every field) is taken as it is. A partial one, e.g. ``{"priors": {"PE": (0.25, 5.0)}}``, is laid
    over mrs-tf's training defaults (:data:`TRAINING_SYNTHESIS`): the fields it gives replace theirs, its ``priors``
    replace those signals' ranges only (mM; every other signal keeps its widened healthy-brain prior). Without this a
    partial dict trained on :class:`SynthesisConfig`'s narrow defaults (no lipids, baselines or MM variation, the
    unwidened priors) without a word."""
    from dataclasses import fields

    names = [f.name for f in fields(SynthesisConfig)]
    given = dict(synthesis or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise MRSError(f"unknown synthesis settings {unknown}; SynthesisConfig has {', '.join(names)}")
    if given and set(names) <= set(given):
        return given, sorted(given)
    out = asdict(TRAINING_SYNTHESIS)
    out.update({k: v for k, v in given.items() if k != "priors"})
    out["priors"] = {**out["priors"], **given.get("priors", {})}
    return out, sorted(given)


def priors_text(priors: dict) -> str:
    """``{"PE": (0.25, 5.0), ...}`` as people write it: ``"PE 0.25-5, ..."`` (mM)."""
    return ", ".join(f"{k} {float(v[0]):g}-{float(v[1]):g}" for k, v in priors.items())


def same_setting(a, b) -> bool:
    """Whether two settings are equal as ``train_config.json`` holds them (tuples and lists alike, 5 == 5.0)."""
    import json

    return json.loads(json.dumps(a, default=list)) == json.loads(json.dumps(b, default=list))


@dataclass
class TrainConfig:
    """What to train and how (units in the names; every random path seeded by ``seed``)."""

    model: str = "seed_cnn"
    model_kwargs: dict = field(default_factory=dict)
    uncertainty: bool = True
    batch_size: int = 128
    steps_per_epoch: int = 200
    epochs: int = 40
    learning_rate: float = 1e-3
    snr: tuple = (5.0, 200.0)
    synthesis: dict = field(default_factory=lambda: asdict(TRAINING_SYNTHESIS))
    ppm_range: tuple = DEFAULT_PPM_RANGE
    val_size: int = 2048
    seed: int = 0
    patience: int = 8
    tensorboard: bool = False
    protocol: dict = field(default_factory=lambda: dict(DEFAULT_PROTOCOL))
    tfds_config: str | None = None  # train on mrs_brain_sim/<config> instead of streaming
    combinations: bool = True  # also output NAA+NAAG, Cr+PCr, GPC+PCh, Glu+Gln (their own calibrated sigma)
    basis_path: str | None = None     # train on this basis file/folder instead of simulating ``protocol``
    protocol_from: str | None = None  # a data file whose points, dwell, field (and TE) the basis is matched to
    complete_basis: bool = False      # add mrs-tf's simulation of the brain metabolites the basis lacks (Gly, Glc, ...)
    omit: tuple = ()                  # signals of the basis left out of training (BasisSet.without)
    ensemble: int = 1                 # train this many networks (seeds seed, seed+1, ...) read as one (nn.ensemble)
    lr_schedule: str = "cosine"       # LR_SCHEDULES: cosine anneal over the epochs, or halved on a plateau
    highpass_hz: float = 0.0          # > 0: the network reads its input minus a smoothing of this FWHM (Hz)

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise MRSError(f"lr_schedule {self.lr_schedule!r}: give one of {', '.join(LR_SCHEDULES)}")
        if not (np.isfinite(self.highpass_hz) and self.highpass_hz >= 0):
            raise MRSError(f"highpass_hz {self.highpass_hz!r}: give a width in Hz (e.g. {HIGHPASS_HZ:g}), "
                           f"or 0 for none")

    def network_kwargs(self, n_points: int, dwell_s: float) -> dict:
        """The builder's keywords for a protocol of ``n_points`` at ``dwell_s``: ``model_kwargs`` with
        ``highpass_bins`` (``highpass_hz`` in spectral bins of 1/(n_points dwell_s) Hz) unless they set it."""
        if not self.highpass_hz:
            return dict(self.model_kwargs)
        return {"highpass_bins": float(self.highpass_hz) * n_points * dwell_s, **self.model_kwargs}

    @classmethod
    def from_saved(cls, saved: dict) -> "TrainConfig":
        """The config of a run's ``train_config.json``. A run saved before ``lr_schedule`` existed trained with the
        plateau schedule and the network builders' dropout of then (0.1): it resumes, and its card reads, as it
        was."""
        saved = dict(saved)
        if "lr_schedule" not in saved:
            saved["lr_schedule"] = "plateau"
            saved["model_kwargs"] = {"dropout": 0.1, **saved.get("model_kwargs", {})}
        saved.setdefault("highpass_hz", 0.0)  # saved before the high-pass front existed: trained without it
        return cls(**saved)

    def synthesis_config(self) -> SynthesisConfig:
        syn = dict(self.synthesis)
        for key, value in syn.items():
            if isinstance(value, list):
                syn[key] = tuple(value)
        return SynthesisConfig(**syn)


#: the ``mm_model`` note of a user's basis to which mrs-tf's single parametric MM was added (it had none); fits from
#: the network's answer use free MM components and lipids instead (:meth:`mrs_tf.nn.bundle.ModelBundle.fit_basis`)
ADDED_PARAMETRIC_MM = "mrs-tf parametric MM (added, scaled to the basis's units)"

#: concentration prior (mM) of a foreign basis's signals that mrs-tf does not know (override in synthesis priors)
UNKNOWN_PRIOR_MM = (0.0, 2.0)


def evaluation_synthesis(syn: SynthesisConfig) -> SynthesisConfig:
    """Test and calibration sets: ``syn``'s nuisance ranges with healthy-brain priors (:func:`healthy_priors`), the
    fixed parametric MM shape, the one QUEST's basis and the CRLB assume (so that network, QUEST and bound are
    compared on the same signal model; ``benchmarks/sim_to_real.py`` measures varied and foreign MM shapes), and the
    basis signals whole (no creatine CH2 or choline multiplets scaled)."""
    return healthy_priors(syn).with_(mm_amp_spread=0.0, mm_ppm_spread=0.0, mm_width_spread=0.0,
                                     mm_lorentz_fraction=(0.0, 0.0), cr_ch2_scale=(1.0, 1.0),
                                     cho_multiplet_scale=(1.0, 1.0))


def healthy_priors(syn: SynthesisConfig) -> SynthesisConfig:
    """``syn`` with the default (healthy-brain) concentration priors wherever mrs-tf has one; priors of a foreign
    basis's extra signals are kept. Test and calibration sets are drawn with it."""
    from mrs_tf.physics.metabolites import ALL_NAMES

    return syn.with_(priors={k: v for k, v in syn.priors.items() if k not in ALL_NAMES})


def load_training_basis(path, protocol_from=None, add_mm: bool = True, complete: bool = False,
                        omit=()) -> BasisSet:
    """A user's basis set for training: read (any format, unknown signals kept), matched to a data file's protocol
    when ``protocol_from`` is given (resampled to its points and dwell time; a different field, echo time (by more
    than 0.5 ms) or sequence (where both name one) is an error; the data's TE recorded), and given mrs-tf's parametric MM signal when it has none (real spectra always contain
    one). ``complete``: mrs-tf's simulation of the brain metabolites it lacks added (ideal pulses; see
    :func:`mrs_tf.basis_prep.prepare_basis`): a brain's Gly, Glc and Ala then have signals of their own in training.
    ``omit``: signals of the file left out (:meth:`BasisSet.without`)."""
    import dataclasses
    import math

    from mrs_tf.core.errors import ProtocolError
    from mrs_tf.io import read_data
    from mrs_tf.physics.metabolites import MM_NAME

    data = read_data(protocol_from) if protocol_from else None
    basis = BasisSet.load(path, unknown="keep", field_mhz=data["field_mhz"] if data else None)
    if omit:
        basis = basis.without(omit)
    protocol = dict(basis.protocol)
    if data is not None:
        if not math.isclose(basis.field_mhz, data["field_mhz"], rel_tol=5e-3):
            raise ProtocolError(f"basis {path} is for {basis.field_mhz:g} MHz, data {protocol_from} for "
                                f"{data['field_mhz']:g} MHz: simulate a basis for the data's field")
        from mrs_tf.physics.protocols import basis_mismatch

        problems = basis_mismatch(protocol, data)
        if problems:
            raise ProtocolError(f"basis {path} does not suit data {protocol_from}: {'; '.join(problems)} (a network "
                                f"trained on it would read the data's coupled signals wrongly)")
        if data.get("te_ms"):
            protocol["te_ms"] = float(data["te_ms"])
    from mrs_tf.fitting.basis_prep import parametric_mm, prepare_basis

    # the same hygiene as the fit (reference peaks out, ppm re-referenced, resampled to the data); MM below
    basis = prepare_basis(dataclasses.replace(basis, protocol=protocol),
                          n_points=data["fids"].shape[1] if data else None, dwell_s=data["dwell_s"] if data else None,
                          add_mm=False, complete=complete).basis
    protocol.update({k: v for k, v in basis.protocol.items() if k not in protocol})
    if add_mm and MM_NAME not in basis.names:
        # in the basis's own units (FID amplitude per proton), like the metabolites: unscaled, a basis in units of
        # 1e-4 per proton would get MM peaks 10,000x too tall
        fids = np.vstack([basis.fids, parametric_mm(basis)])
        basis = BasisSet(list(basis.names) + [MM_NAME], fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm,
                         dict(protocol, mm_model=ADDED_PARAMETRIC_MM))
    else:
        basis = BasisSet(list(basis.names), basis.fids, basis.dwell_s, basis.field_mhz, basis.ref_ppm, protocol)
    return basis


def prior_scale(names) -> np.ndarray:
    """Typical value of each output (prior mid-point, mM; a combination "A+B": the sum of its parts'): the loss
    weighs each output by 1/scale^2."""
    return np.array([prior_means(name.split("+")).sum() for name in names])


def output_names(names, combinations: bool = True) -> list[str]:
    """The network's outputs: the basis ``names``, then each of :data:`mrs_tf.crlb.COMBINATIONS` whose parts are
    all present (a sum's sigma cannot be had from the parts' sigmas: Cr and PCr errors are anti-correlated)."""
    from mrs_tf.fitting.crlb import combination_rows

    return list(names) + (list(combination_rows(names)) if combinations else [])


def combination_matrix(names, outputs) -> np.ndarray:
    """(len(names), len(outputs)) float32 matrix: ``concentrations @ C`` = the outputs' targets."""
    names = list(names)
    mat = np.zeros((len(names), len(outputs)), np.float32)
    for j, out in enumerate(outputs):
        for part in out.split("+"):
            mat[names.index(part), j] = 1.0
    return mat
