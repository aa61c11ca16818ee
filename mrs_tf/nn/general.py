"""Protocol-general networks: one model for every scan of a protocol space (3 T short-TE PRESS by default).

The network reads the spectrum on a fixed ppm grid (:func:`mrs_tf.preprocess.grid.grid_spectrum`; any points,
dwell time and field) and the protocol itself (input ``"protocol"``: field and TE, scaled by :func:`protocol_vector`).
It is trained on a stream in which every batch is one protocol drawn from the space: field, TE and sub-echo split
(basis from :func:`mrs_tf.physics.protocols.protocol_basis`), bandwidth (grid points beyond it zeroed), and the
in vivo nuisances of :data:`GENERAL_SYNTHESIS` (lineshapes, shifts, phases, baselines, residual water, lipids, varied
macromolecules, per-metabolite shifts). Only mrs-tf's own simulation is used.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from mrs_tf.physics.protocols import (DEFAULT_GRID, SHORT_TE_PRESS_3T, ProtocolGrid, ProtocolSpace, protocol_basis,
                                     protocol_vector)
from mrs_tf.physics.synth import SynthesisConfig, concentration_matrix, synthesize
from mrs_tf.preprocess.grid import GRID_POINTS, grid_coverage, grid_spectrum

__all__ = ["GENERAL_SYNTHESIS", "BasisRandomisation", "GROUP_SHIFTS", "shifted_spin_systems", "NO_RANDOMISATION", "DOMAIN_RANDOMISATION", "SHAPED_PULSES",
           "protocol_vector", "draw_protocol", "general_batch", "general_dataset", "general_batches", "general_validation_set"]

#: the first point's weight beyond the trapezoid rule (s) in the training stream's grid spectra: the plain Fourier
#: sum of FIDs simulated at the grid's 2 kHz adds half a dwell time x the first point to every grid point; recorded
#: in ``quantifier.json`` (``grid.first_point_offset_s``) so that scans of any dwell time are read the same way
FIRST_POINT_OFFSET_S = 0.5 / DEFAULT_GRID.bandwidth_hz

#: the nuisances of the training stream (3 T, short TE, in vivo as scanners deliver it)
GENERAL_SYNTHESIS = SynthesisConfig(
    lorentz_hz=(1.0, 12.0), gauss_hz=(2.0, 14.0), shift_ppm=(-0.2, 0.2), metab_shift_hz=2.0,
    phase0_deg=(-180.0, 180.0), phase1_deg_per_ppm=(-5.0, 5.0), baseline_components=4, baseline_amp=(-0.15, 0.15),
    water_amp=(0.0, 2.0), lipid_amp=(0.0, 0.3), mm_amp_spread=0.3, mm_ppm_spread=0.04, mm_width_spread=0.25,
    mm_lorentz_fraction=(0.0, 1.0))


@dataclass(frozen=True)
class BasisRandomisation:
    """Domain randomisation of the basis signals themselves, against the gap between mrs-tf's simulation and a basis
    simulated elsewhere (vendor refocusing pulses, other spin tables, a basis linewidth, imperfect shims):

    * ``te_ms``, ``te1_fraction``: each metabolite's signal taken from one of ``variants`` bases simulated at the
      batch's TE +- ``te_ms`` (uniform) and a first sub-echo fraction drawn from ``te1_fraction``, so that the
      J-evolution of coupled signals (Glu, Gln, Ins, GSH, GABA) varies between metabolites as finite pulses make it
      vary, instead of following one ideal-pulse echo time exactly;
    * ``basis_lorentz_hz``: a Lorentzian line broadening per metabolite (Hz, uniform), the linewidth that a basis
      from elsewhere may carry built in;
    * ``multiplet_gain``, ``multiplet_phase_deg``: the J-coupled signals' multiplets reshaped, as finite refocusing
      pulses reshape them (chemical-shift displacement: coupled partners refocused in different parts of the
      voxel). Each coupled metabolite's spectrum (:data:`COUPLED`) is multiplied by ``exp(sum_j (a_j + i b_j)
      G_j(ppm))``, Gaussian bumps ``G_j`` (sigma 0.12 ppm) every 0.25 ppm over 1.0-4.5 ppm, ``a_j`` uniform in
      +-``multiplet_gain``, ``b_j`` in +-``multiplet_phase_deg``; its spectral norm kept (the concentration still
      means the same amount of signal); the acetyl singlets of NAA/NAAG untouched (bumps from 2.3 ppm on). Vendor-pulse
      bases differ from mrs-tf's ideal-pulse one so: Glu's 3.75 ppm multiplet 1.6-1.8x, its 2.0-2.45 ppm ones
      0.8-0.95x, PCh's 3.5 ppm 0.7-0.8x (Osprey's PRESS TE 35 bases, ratios of window integrals), a pattern that no
      echo time or sub-echo split of ideal pulses produces (those scale both Glu regions together);
    * ``te_names``: the metabolites that take their signal from the TE/split variants above (empty: every one); e.g.
      ``("NAA", "NAAG")``: only NAA's aspartyl multiplet is untied from the batch's split, the signal vendor bases
      put at another split than their Glu and Gln;
    * ``pulses``, ``shaped_fraction``: that fraction of batches takes its whole basis from a PRESS simulation with
      shaped, slice-selective refocusing pulses (one of ``pulses``, names in
      :data:`~mrs_tf.physics.pulses.REFOCUSING_PULSES`, drawn per batch) instead of ideal ones: the physics of the
      vendor-pulse multiplets rather than a random reshaping of them;
    * ``group_shift_ppm``: every spin system of every metabolite (NAA's acetyl singlet and its aspartyl group, Cr's
      CH3 and CH2, GPC's choline singlet and its glycerol groups, ...; :attr:`Metabolite.systems`) moved by its own
      shift, uniform in +-this (ppm), per batch: the groups of one metabolite sit a little apart from where mrs-tf's
      tables put them, as the published tables differ from each other and from real basis sets (0.01-0.02 ppm);
      per-metabolite shifts (the synthesis' ``metab_shift_hz``) move a metabolite's groups together;
    * ``asymmetry_fraction``: the fraction of spectra whose every line is skewed (eddy currents, poor shims): a
      shoulder of weight ``asymmetry_weight`` (uniform) ``asymmetry_offset_hz`` (uniform, either side) from each line,
      broadened by 3 Hz, FID(0) unchanged.
    """

    te_ms: float = 0.0
    te1_fraction: tuple[float, float] | None = None
    variants: int = 4
    basis_lorentz_hz: tuple[float, float] = (0.0, 0.0)
    multiplet_gain: float = 0.0
    multiplet_phase_deg: float = 0.0
    asymmetry_fraction: float = 0.0
    asymmetry_weight: tuple[float, float] = (0.05, 0.3)
    asymmetry_offset_hz: tuple[float, float] = (2.0, 6.0)
    pulses: tuple[str, ...] = ()
    shaped_fraction: float = 0.0
    group_shift_ppm: float = 0.0
    te_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from mrs_tf.physics.pulses import REFOCUSING_PULSES

        unknown = [p for p in self.pulses if p not in REFOCUSING_PULSES]
        if unknown:
            raise ValueError(f"unknown refocusing pulse(s) {', '.join(unknown)}; known: {', '.join(REFOCUSING_PULSES)}")
        if self.shaped_fraction and not self.pulses:
            raise ValueError("shaped_fraction > 0 needs pulses")

    @property
    def active(self) -> bool:
        return bool(self.te_ms or self.te1_fraction or self.basis_lorentz_hz[1] or self.asymmetry_fraction or
                    self.multiplet_gain or self.multiplet_phase_deg or self.shaped_fraction or self.group_shift_ppm)


#: the J-coupled signals whose multiplets :attr:`BasisRandomisation.multiplet_gain` reshapes
COUPLED = ("Ala", "Asc", "Asp", "GABA", "Glc", "Gln", "Glu", "GPC", "GSH", "Ins", "Lac", "NAA", "NAAG", "PCh", "PE",
           "Tau")
#: multiplet bumps: centres (ppm) and width (sigma, ppm)
_BUMPS, _BUMP_SIGMA = np.arange(1.0, 4.51, 0.25), 0.12


def reshape_multiplets(fids: np.ndarray, names, basis, rng: np.random.Generator, gain: float,
                       phase_deg: float) -> np.ndarray:
    """``fids`` (rows in ``names`` order, ``basis``'s sampling) with the multiplets of :data:`COUPLED` reshaped (see
    :class:`BasisRandomisation`); zero-padded to twice the length for the spectral product, spectral norm kept."""
    n = fids.shape[1]
    ppm = basis.ref_ppm - np.fft.fftfreq(2 * n, basis.dwell_s) / basis.field_mhz
    bumps = np.exp(-0.5 * ((ppm[None, :] - _BUMPS[:, None]) / _BUMP_SIGMA) ** 2)  # (J, 2N)
    out = fids.copy()
    for k, name in enumerate(names):
        if name not in COUPLED:
            continue
        a = rng.uniform(-gain, gain, len(_BUMPS)) + 1j * np.deg2rad(rng.uniform(-phase_deg, phase_deg, len(_BUMPS)))
        if name in ("NAA", "NAAG"):
            a[_BUMPS < 2.3] = 0.0  # the acetyl singlet (2.01/2.04 ppm) is not a multiplet
        spec = np.fft.fft(fids[k], 2 * n)
        new = spec * np.exp(a @ bumps)
        new *= np.linalg.norm(spec) / max(np.linalg.norm(new), 1e-30)
        out[k] = np.fft.ifft(new)[:n]
    return out


#: no randomisation of the basis signals (press3t_short_te's first release)
NO_RANDOMISATION = BasisRandomisation()
#: every part on: per-metabolite TE +-3 ms and sub-echo split 0.35-0.5, basis lines 0-2 Hz, 30 % skewed spectra
DOMAIN_RANDOMISATION = BasisRandomisation(te_ms=3.0, te1_fraction=(0.35, 0.5), basis_lorentz_hz=(0.0, 2.0),
                                          asymmetry_fraction=0.3)
#: three of four batches from a shaped-pulse PRESS simulation (three sinc refocusing pulses, 4.0-6.9 ms)
SHAPED_PULSES = BasisRandomisation(pulses=("sinc_4.0ms_1600hz", "sinc_5.2ms_1200hz", "sinc_6.9ms_900hz"),
                                   shaped_fraction=0.75)


#: every spin system moved by its own shift within +-0.02 ppm (issue 18's per-spin-group perturbations)
GROUP_SHIFTS = BasisRandomisation(group_shift_ppm=0.02)


def randomised_basis(proto: dict, names, rng: np.random.Generator, rand: BasisRandomisation,
                     space: ProtocolSpace = SHORT_TE_PRESS_3T, grid: ProtocolGrid = DEFAULT_GRID):
    """The basis of ``proto`` with :class:`BasisRandomisation` ``rand`` applied per metabolite (MM untouched)."""
    pulse = None
    if rand.shaped_fraction and rng.random() < rand.shaped_fraction:
        pulse = str(rng.choice(list(rand.pulses)))
    basis = protocol_basis(proto["field_mhz"], proto["te_ms"], proto["te1_ms"], grid, space,
                           refocusing=pulse).subset(list(names))
    if not rand.active:
        return basis
    fids = basis.fids.copy()
    metabolites = [k for k, n in enumerate(basis.names) if n != "MM"]
    if rand.group_shift_ppm:
        fids = shifted_spin_systems(proto, basis, rng, rand.group_shift_ppm, pulse, space, grid)
    if rand.te_ms or rand.te1_fraction:
        variants = []
        for _ in range(rand.variants):
            te = float(np.clip(proto["te_ms"] + rng.uniform(-rand.te_ms, rand.te_ms), *space.te_ms))
            frac = rng.uniform(*rand.te1_fraction) if rand.te1_fraction else proto["te1_ms"] / proto["te_ms"]
            variants.append(protocol_basis(proto["field_mhz"], te, te * frac, grid, space,
                                           refocusing=pulse).subset(list(names)).fids)
        pick = rng.integers(0, rand.variants + 1, len(metabolites))  # rand.variants: the batch's own basis
        if rand.te_names:  # only these take a variant (the draws above are the same either way)
            pick = np.where([basis.names[k] in rand.te_names for k in metabolites], pick, rand.variants)
        for k, v in zip(metabolites, pick):
            if v < rand.variants:
                fids[k] = variants[v][k]
    if rand.multiplet_gain or rand.multiplet_phase_deg:
        fids = reshape_multiplets(fids, basis.names, basis, rng, rand.multiplet_gain, rand.multiplet_phase_deg)
    if rand.basis_lorentz_hz[1] > 0:
        widths = rng.uniform(*rand.basis_lorentz_hz, len(metabolites))
        fids[metabolites] *= np.exp(-np.pi * widths[:, None] * basis.time[None, :])
    return dataclasses.replace(basis, fids=fids)


def shifted_spin_systems(proto: dict, basis, rng: np.random.Generator, max_ppm: float, pulse: str | None = None,
                         space: ProtocolSpace = SHORT_TE_PRESS_3T, grid: ProtocolGrid = DEFAULT_GRID) -> np.ndarray:
    """``basis.fids`` (the protocol basis of ``proto``, rows in ``basis.names`` order) rebuilt from its spin systems,
    each moved by a shift uniform in +-``max_ppm`` (ppm; positive: to higher ppm); MM unchanged."""
    parts = protocol_basis(proto["field_mhz"], proto["te_ms"], proto["te1_ms"], grid, space, refocusing=pulse,
                           spin_systems=True)
    shifts_hz = rng.uniform(-max_ppm, max_ppm, len(parts.names)) * parts.field_mhz
    # a signal at higher ppm precesses slower: exp(-2 pi i delta_hz t)
    moved = parts.fids * np.exp(-2j * np.pi * shifts_hz[:, None] * parts.time[None, :])
    fids = basis.fids.copy()
    for k, name in enumerate(basis.names):
        if name == "MM":
            continue
        rows = [j for j, part in enumerate(parts.names) if part.split("#")[0] == name]
        fids[k] = moved[rows].sum(0)
    return fids


def skewed(fids: np.ndarray, dwell_s: float, weight, offset_hz, broadening_hz=3.0) -> np.ndarray:
    """``fids`` with every line convolved with a skewed lineshape: a shoulder of ``weight`` at ``offset_hz`` from each
    line, broadened by ``broadening_hz``, ``(1 - w) + w exp(2 pi i offset t - pi broadening t)``; FID(0), the areas,
    unchanged. ``weight``, ``offset_hz``: scalars or one per FID."""
    t = np.arange(fids.shape[-1]) * dwell_s
    w, off = (np.asarray(x, float)[..., None] for x in (weight, offset_hz))
    h = (1 - w) + w * np.exp(2j * np.pi * off * t - np.pi * broadening_hz * t)
    return fids * h.astype(fids.dtype)


def skew_lines(fids: np.ndarray, dwell_s: float, rng: np.random.Generator, rand: BasisRandomisation) -> np.ndarray:
    """:attr:`BasisRandomisation.asymmetry_fraction` of ``fids`` with every line skewed (see the class)."""
    if rand.asymmetry_fraction <= 0:
        return fids
    n = len(fids)
    hit = rng.random(n) < rand.asymmetry_fraction
    weight = rng.uniform(*rand.asymmetry_weight, n)
    offset = rng.uniform(*rand.asymmetry_offset_hz, n) * rng.choice([-1.0, 1.0], n)
    out = fids.copy()
    out[hit] = skewed(fids[hit], dwell_s, weight[hit], offset[hit])
    return out


def draw_protocol(rng: np.random.Generator, space: ProtocolSpace = SHORT_TE_PRESS_3T) -> dict:
    """One protocol of ``space``: half the draws at the vendors' fields (123.2 or 127.7 MHz), half anywhere between;
    TE uniform; first sub-echo 35-50 % of TE; bandwidth log-uniform 1-8 kHz."""
    lo, hi = space.field_mhz
    field = float(rng.choice([123.2, 127.7])) if rng.random() < 0.5 else float(rng.uniform(lo, hi))
    te = float(rng.uniform(*space.te_ms))
    te1 = te * float(rng.uniform(*space.te1_fraction))
    bandwidth = float(np.exp(rng.uniform(np.log(space.min_bandwidth_hz), np.log(8000.0))))
    return {"field_mhz": field, "te_ms": te, "te1_ms": te1, "bandwidth_hz": bandwidth}


def batch_protocol(seed: int, index: int, space: ProtocolSpace = SHORT_TE_PRESS_3T) -> dict:
    """The protocol of batch ``index`` of the stream of ``seed`` (:func:`draw_protocol` from its own seed)."""
    return draw_protocol(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 7])), space)


def general_batch(names, batch_size: int, seed: int, index: int, snr=(5.0, 200.0),
                  config: SynthesisConfig = GENERAL_SYNTHESIS, space: ProtocolSpace = SHORT_TE_PRESS_3T,
                  grid: ProtocolGrid = DEFAULT_GRID, randomisation: BasisRandomisation = NO_RANDOMISATION):
    """Batch ``index`` of the stream of ``seed``: (spectra float32 (B, GRID_POINTS, 2), protocol float32 (B, 2),
    concentrations float32 (B, M) in ``names`` order). One protocol per batch; ``randomisation`` varies the basis
    signals per metabolite and skews lines (:class:`BasisRandomisation`; its draws from their own seed, so that
    the concentrations and nuisances of batch ``index`` are the same with and without it)."""
    proto = batch_protocol(seed, index, space)
    rand_rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 11]))
    basis = randomised_basis(proto, names, rand_rng, randomisation, space, grid)
    fids, truth = synthesize(basis, n=batch_size, snr=snr, seed=np.random.SeedSequence([int(seed), int(index)]),
                             config=config, n_jobs=1)
    fids = skew_lines(fids, basis.dwell_s, rand_rng, randomisation)
    # batches run in parallel already (workers=1); the plain sum (h = 0.5 * dwell, bit for bit), as every network
    # of this stream learnt: the basis's dwell is 1/2 kHz relabelled to the batch's field (up to ~2 % off), so
    # FIRST_POINT_OFFSET_S, which quantifier.json records for scans, is the stream's pedestal to within that
    spectra = grid_spectrum(fids, basis.dwell_s, basis.field_mhz, workers=1, first_point_offset_s=0.5 * basis.dwell_s)
    # a narrower acquisition does not reach every grid point: what it would not have seen is zero
    spectra[:, ~grid_coverage(1.0 / proto["bandwidth_hz"], proto["field_mhz"])] = 0.0
    protocol = np.repeat(protocol_vector(proto["field_mhz"], proto["te_ms"]), batch_size, axis=0)
    return spectra, protocol, concentration_matrix(truth, list(names)).astype(np.float32)


def general_dataset(names, outputs_matrix, batch_size: int = 256, seed: int = 0, snr=(5.0, 200.0),
                    config: SynthesisConfig = GENERAL_SYNTHESIS, first_batch: int = 0, n_batches: int | None = None,
                    randomisation: BasisRandomisation = NO_RANDOMISATION):
    """``tf.data`` of ``({"spectrum", "protocol"}, {"concentrations"})`` batches of :func:`general_batch`;
    ``outputs_matrix`` (M, outputs) maps concentrations to the network's outputs (sums included)."""
    import tensorflow as tf

    mat = tf.constant(np.asarray(outputs_matrix, np.float32))
    end = first_batch + n_batches if n_batches is not None else 2 ** 62

    def make(index):
        spectra, protocol, conc = tf.numpy_function(
            lambda i: general_batch(names, batch_size, seed, int(i), snr, config, randomisation=randomisation),
            [index], [tf.float32, tf.float32, tf.float32], stateful=False)
        spectra.set_shape((batch_size, GRID_POINTS, 2))
        protocol.set_shape((batch_size, 2))
        conc.set_shape((batch_size, len(names)))
        return {"spectrum": spectra, "protocol": protocol}, {"concentrations": tf.matmul(conc, mat)}

    return (tf.data.Dataset.range(first_batch, end)
            .map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(4))


def _worker_start() -> None:
    """A stream worker: one BLAS thread (the pool has a process per core)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def general_batches(names, outputs_matrix, batch_size: int = 256, seed: int = 0, snr=(5.0, 200.0),
                    config: SynthesisConfig = GENERAL_SYNTHESIS, first_batch: int = 0, n_batches: int | None = None,
                    randomisation: BasisRandomisation = NO_RANDOMISATION, workers: int = 4, ahead: int | None = None):
    """The stream of :func:`general_dataset` (the same batches, bit for bit) as a Python generator fed by a pool of
    ``workers`` processes, for any Keras backend (JAX or PyTorch on a GPU machine without TensorFlow). The workers
    are spawned, not forked, so they start clean whatever the parent has initialised (JAX's threads, CUDA);
    ``ahead`` batches (default 3 per worker) are in flight at a time, delivered in order."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    mat = np.asarray(outputs_matrix, np.float32)
    ahead = ahead or 3 * workers
    end = first_batch + n_batches if n_batches is not None else 2 ** 62
    args = (list(names), batch_size, seed)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_start) as pool:
        pending: deque = deque()
        index = first_batch
        while True:
            while len(pending) < ahead and index < end:
                pending.append(pool.submit(general_batch, *args, index, snr, config, randomisation=randomisation))
                index += 1
            if not pending:
                return
            spectra, protocol, conc = pending.popleft().result()
            yield {"spectrum": spectra, "protocol": protocol}, {"concentrations": conc @ mat}


def general_validation_set(names, outputs_matrix, n_batches: int = 8, batch_size: int = 256, seed: int = 0,
                           snr=(5.0, 200.0), config: SynthesisConfig = GENERAL_SYNTHESIS,
                           randomisation: BasisRandomisation = NO_RANDOMISATION):
    """Fixed validation batches (seed offset 1,000,000: never in the training stream) drawn as the stream draws them
    (``randomisation`` included: the best epoch is chosen on the distribution trained for), as numpy arrays."""
    parts = [general_batch(names, batch_size, seed + 1_000_000, i, snr, config, randomisation=randomisation)
             for i in range(n_batches)]
    spectra, protocol, conc = (np.concatenate(p) for p in zip(*parts))
    return {"spectrum": spectra, "protocol": protocol}, {"concentrations": conc @ np.asarray(outputs_matrix)}


def train_general(out_dir, minutes: float = 40.0, *, batch_size: int = 256, steps_per_epoch: int = 100,
                  learning_rate: float = 1e-3, seed: int = 0, model: str = "seed_cnn", model_kwargs: dict | None = None,
                  val_batches: int = 8, resume: bool = False, verbose="auto", init_from=None,
                  min_learning_rate: float = 1e-5, randomisation: BasisRandomisation = NO_RANDOMISATION,
                  epochs: int | None = None, synthesis: SynthesisConfig = GENERAL_SYNTHESIS,
                  workers: int | None = None, zero_above_ppm: float | None = None):
    """Train a protocol-general network for ``minutes`` of wall-clock time (the epoch running at the limit ends
    it) into ``out_dir``: ``model.keras``, ``quantifier.json`` (``"input": "ppm_grid"`` and the protocol space),
    ``log.csv``; resumable (``resume=True`` continues the same stream). The learning rate follows a cosine from
    ``learning_rate`` to ``min_learning_rate`` over the time budget (a plateau schedule on a noisy validation set
    halved it six times in the first 13 minutes). ``init_from``: a ``.keras`` model whose weights start the run.
    ``synthesis``: the nuisance ranges of the stream (default :data:`GENERAL_SYNTHESIS`; recorded in
    ``quantifier.json`` and used for the sigma calibration).
    ``workers``: simulate the stream in that many processes (:func:`general_batches`) instead of TensorFlow's
    ``tf.data`` threads; the default is ``tf.data`` under the TensorFlow backend and one process per core under any
    other (``KERAS_BACKEND=jax`` on a GPU machine). The sigma calibration needs TensorFlow (it runs the bundle's
    inference); under another backend it is left to :func:`calibrate_general_sd` on a TensorFlow install.
    ``zero_above_ppm``: the network reads the grid only up to that shift (a :class:`~mrs_tf.layers.ZeroBins` front,
    ``model_kwargs["zero_bins"]``): above 4.0 ppm real scans carry the water suppression's and the water removal's
    traces, which no simulation reproduces, and the fits (and LCModel) stop at 4.0 ppm for that reason.
    Returns the Keras history dict. BLAS is held at one thread for the run (the stream's bits do not depend on
    thread scheduling; see :func:`mrs_tf.nn.train.train`)."""
    from mrs_tf.core.threads import one_blas_thread

    with one_blas_thread():
        if zero_above_ppm is not None:
            from mrs_tf.preprocess.grid import bins_above

            model_kwargs = {**(model_kwargs or {}), "zero_bins": list(bins_above(zero_above_ppm))}
        return _train_general(out_dir, minutes, batch_size, steps_per_epoch, learning_rate, seed, model, model_kwargs,
                              val_batches, resume, verbose, init_from, min_learning_rate, randomisation, epochs,
                              synthesis, workers, zero_above_ppm)


def _train_general(out_dir, minutes, batch_size, steps_per_epoch, learning_rate, seed, model, model_kwargs,
                   val_batches, resume, verbose, init_from, min_learning_rate, randomisation, epochs, synthesis,
                   workers, zero_above_ppm=None):
    import os
    import time
    from pathlib import Path

    import keras

    from mrs_tf.core.errors import OutputExistsError
    from mrs_tf.nn.models import build_model
    from mrs_tf.nn.train import (_backed_up_epochs, _write_json, combination_matrix, compile_model, logged_run,
                                 output_names, progress_verbosity, training_hardware)
    from mrs_tf.physics.basis import simulate_basis

    out = Path(out_dir)
    backup = out / "backup"
    if (out / "model.keras").exists() and not resume:
        raise OutputExistsError(f"{out} already holds a trained model; use another folder")
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    names = list(simulate_basis().names)
    outputs = output_names(names)
    mat = combination_matrix(names, outputs)
    val_x, val_y = general_validation_set(names, mat, val_batches, batch_size, seed, config=synthesis,
                                          randomisation=randomisation)
    rms = np.sqrt(np.mean(val_x["spectrum"] ** 2, axis=(1, 2)))
    scale = np.median(val_y["concentrations"] / rms[:, None], axis=0)
    net = build_model(model, input_points=GRID_POINTS, n_outputs=len(outputs), output_scale=scale, uncertainty=True,
                      protocol_inputs=2, **(model_kwargs or {}))
    compile_model(net, outputs, True, learning_rate)
    if init_from is not None:
        net.set_weights(keras.saving.load_model(init_from, compile=False).get_weights())
    first = _backed_up_epochs(backup) * steps_per_epoch if resume else 0
    tensorflow = keras.backend.backend() == "tensorflow"
    if tensorflow and not workers:
        ds = general_dataset(names, mat, batch_size, seed, config=synthesis, first_batch=first,
                             randomisation=randomisation)
    else:
        ds = general_batches(names, mat, batch_size, seed, config=synthesis, first_batch=first,
                             randomisation=randomisation, workers=workers or os.cpu_count() or 1)
    earlier = logged_run(out) if resume else {"seconds": 0.0, "best_val_loss": None, "epochs": 0}
    deadline = time.time() + minutes * 60 - earlier["seconds"]

    budget = max(deadline - time.time(), 1.0)

    class Budget(keras.callbacks.Callback):
        """Stops at the deadline; the learning rate a cosine of the time spent."""

        def on_epoch_begin(self, epoch, logs=None):
            done = epoch / epochs if epochs else min(1.0, 1.0 - (deadline - time.time()) / budget)
            lr = min_learning_rate + (learning_rate - min_learning_rate) * 0.5 * (1 + np.cos(np.pi * done))
            self.model.optimizer.learning_rate.assign(lr)

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["learning_rate"] = float(self.model.optimizer.learning_rate.numpy())
            if time.time() > deadline and not epochs:
                self.model.stop_training = True

    start = time.perf_counter()
    history = net.fit(ds, epochs=epochs or 100_000, steps_per_epoch=steps_per_epoch, validation_data=(val_x, val_y),
                      shuffle=False,
                      validation_batch_size=512, verbose=progress_verbosity(verbose), callbacks=[
                          keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False),
                          keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_loss",
                                                          save_best_only=True,
                                                          initial_value_threshold=earlier["best_val_loss"]),
                          keras.callbacks.CSVLogger(str(out / "log.csv"), append=resume), Budget()])
    seconds = earlier["seconds"] + time.perf_counter() - start
    best = keras.saving.load_model(out / "best.keras", compile=False) if (out / "best.keras").exists() else net
    tmp = out / ".model.keras.tmp.keras"
    best.save(tmp)
    os.replace(tmp, out / "model.keras")
    epochs_run = logged_run(out)["epochs"]
    space = SHORT_TE_PRESS_3T
    meta = {"input": "ppm_grid", "grid": {"ppm_range": [0.2, 4.2], "points": GRID_POINTS,
                                          "zeroed_above_ppm": zero_above_ppm,
                                          "first_point_offset_s": FIRST_POINT_OFFSET_S},
            "space": {"sequence": space.sequence, "field_mhz": list(space.field_mhz), "te_ms": list(space.te_ms),
                      "te1_fraction": list(space.te1_fraction), "min_bandwidth_hz": space.min_bandwidth_hz,
                      "n_points": list(space.n_points)},
            "names": names, "outputs": outputs, "uncertainty": True, "model": model, "ref_ppm": 4.65,
            "ppm_range": [0.2, 4.2], "basis_amplitude_per_proton": None,
            "protocol": {"sequence": "press", "field_mhz": "123.2-127.8", "te_ms": "20-40"},
            "training": {"seconds": seconds, "epochs_run": epochs_run,
                         "spectra_seen": epochs_run * steps_per_epoch * batch_size, "seed": seed,
                         "batch_size": batch_size, "steps_per_epoch": steps_per_epoch,
                         "learning_rate": learning_rate, "model_kwargs": model_kwargs or {},
                         "synthesis": {k: v for k, v in synthesis.__dict__.items() if k != "priors"},
                         "basis_randomisation": dataclasses.asdict(randomisation),
                         "init_from": str(init_from) if init_from is not None else None,
                         "backend": keras.backend.backend(), "hardware": training_hardware()}}
    _write_json(out / "quantifier.json", meta)
    if tensorflow:
        calibrate_general_sd(out, seed=seed, batch_size=batch_size, synthesis=synthesis)
    if backup.exists():
        import shutil

        shutil.rmtree(backup)
    return history.history


def calibrate_general_sd(folder, n_batches: int = 160, batch_size: int = 128, seed: int = 0,
                         synthesis: SynthesisConfig = GENERAL_SYNTHESIS,
                         randomisation: BasisRandomisation | None = None, te_step_ms: float = 2.5,
                         snr=(10.0, 100.0)) -> np.ndarray:
    """Post-hoc sigma calibration of a protocol-general network (as :func:`mrs_tf.train.calibrate_sd`): on fresh
    batches of the stream (seed offset 2,000,000, one protocol per batch drawn from the space, healthy-brain priors,
    SNR ``snr``, the basis randomisation ``randomisation``: by default the one the network was trained with, as its
    ``quantifier.json`` records it), the factor per output that makes the median |error| / sigma that of a standard
    normal (0.6745), written into ``quantifier.json`` as ``sd_scale`` and returned.

    The errors depend on the echo time, so the factors are also measured per echo time, at nodes every
    ``te_step_ms`` over the space's range, each from the batches within ``te_step_ms`` of it, and stored as
    ``sd_scale_te`` (``{"te_ms": nodes, "scale": [[factor per output] per node]}``);
    :meth:`mrs_tf.nn.bundle.ModelBundle.sd_factors` interpolates them at the data's echo time."""
    import json
    from pathlib import Path

    from mrs_tf.nn.bundle import ModelBundle
    from mrs_tf.nn.train import _write_json, combination_matrix, evaluation_synthesis, sd_scale

    folder = Path(folder)
    q = ModelBundle.load(folder)
    meta = json.loads((folder / "quantifier.json").read_text())
    for key in ("sd_scale", "sd_scale_te"):
        meta.pop(key, None)
        q.meta.pop(key, None)
    if randomisation is None:
        recorded = dict(meta.get("training", {}).get("basis_randomisation") or {})
        randomisation = BasisRandomisation(**{k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()})
    mat = combination_matrix(q.names, q.outputs)
    syn = evaluation_synthesis(synthesis)
    means, sds, targets, tes = [], [], [], []
    for i in range(n_batches):
        spectra, protocol, conc = general_batch(q.names, batch_size, seed + 2_000_000, i, snr=snr, config=syn,
                                                randomisation=randomisation)
        mean, sd = _predict(q, spectra, protocol)
        te_ms = batch_protocol(seed + 2_000_000, i)["te_ms"]
        means.append(mean), sds.append(sd), targets.append(conc @ mat), tes.append(np.full(len(mean), te_ms))
    mean, sd, target, te = (np.concatenate(x) for x in (means, sds, targets, tes))
    scale = sd_scale(mean, sd, target)
    lo, hi = SHORT_TE_PRESS_3T.te_ms
    nodes = np.arange(lo, hi + 1e-9, te_step_ms)
    per_te = [sd_scale(mean[near], sd[near], target[near]) if (near := np.abs(te - node) <= te_step_ms).sum() >= 256
              else scale for node in nodes]
    meta["sd_scale"] = [float(v) for v in scale]
    meta["sd_scale_te"] = {"te_ms": [float(v) for v in nodes], "scale": [[float(v) for v in row] for row in per_te]}
    meta["sd_calibration"] = {"n": int(len(mean)), "seed": seed + 2_000_000, "priors": "healthy-brain defaults",
                              "snr": [float(v) for v in snr],
                              "protocols": f"drawn from the space, one per batch of {batch_size}",
                              "per_te": f"nodes every {te_step_ms:g} ms, each from the batches within {te_step_ms:g} ms",
                              "basis_randomisation": dataclasses.asdict(randomisation)}
    _write_json(folder / "quantifier.json", meta)
    return scale


def _predict(q, spectra: np.ndarray, protocol: np.ndarray):
    """(mean, raw sd) of a loaded protocol-general network on ready grid spectra and protocol vectors."""
    out = q._infer({"spectrum": spectra, "protocol": protocol})
    return out[:, 0], out[:, 1]
