"""Spectral preprocessing shared by the data sets and the networks: spectra and the metabolite-range crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mrs_tf.physics.basis import lagrange_interpolate, ppm_axis

__all__ = ["DEFAULT_PPM_RANGE", "as_fid_matrix", "crop_slice", "cropped_spectrum", "full_spectrum", "resample_fids",
           "frequency_reference", "eddy_current_correction", "spectral_registration", "singlet_shape"]

#: Metabolite range that the networks see (ppm), high to low as the spectrum array runs.
DEFAULT_PPM_RANGE = (0.2, 4.2)


def as_fid_matrix(fids) -> np.ndarray:
    """``fids`` as a complex (n_spectra, n_points) array (one FID may be 1-D); MRSError for another shape or a
    real-valued array (a spectrum magnitude or a real part is not a FID)."""
    from mrs_tf.core.errors import MRSError

    arr = np.asarray(fids)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise MRSError(f"fids must be complex (n_spectra, n_points), got shape {np.shape(fids)}")
    if not np.iscomplexobj(arr):
        raise MRSError("fids must be complex FIDs (time domain); got a real array")
    return arr


def crop_slice(n_points: int, dwell_s: float, field_mhz: float, ppm_range=DEFAULT_PPM_RANGE,
               ref_ppm: float = 4.65) -> slice:
    """Bins of ``np.fft.fftshift(np.fft.fft(fid))`` whose ppm lies within ``ppm_range`` (a contiguous slice)."""
    ppm = ppm_axis(n_points, dwell_s, field_mhz, ref_ppm)
    idx = np.flatnonzero((ppm <= max(ppm_range)) & (ppm >= min(ppm_range)))
    return slice(int(idx[0]), int(idx[-1]) + 1)


def _shifted_spectrum(fids: np.ndarray) -> np.ndarray:
    """``fftshift(fft(fid))`` along the last axis, in the input's precision, on all cores."""
    import scipy.fft

    return scipy.fft.fftshift(scipy.fft.fft(fids, axis=-1, workers=-1), axes=-1)


def _real_imag(spec: np.ndarray) -> np.ndarray:
    return np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)


def cropped_spectrum(fids: np.ndarray, dwell_s: float, field_mhz: float, ppm_range=DEFAULT_PPM_RANGE,
                     ref_ppm: float = 4.65) -> np.ndarray:
    """float32 (n, K, 2): real and imaginary parts of the spectrum within ``ppm_range`` (ppm decreasing along K).

    The FFT runs in the input's precision (complex64 in: single precision, about twice as fast) on all cores."""
    fids = np.atleast_2d(fids)
    sl = crop_slice(fids.shape[-1], dwell_s, field_mhz, ppm_range, ref_ppm)
    return _real_imag(_shifted_spectrum(fids)[..., sl])


def full_spectrum(fids) -> np.ndarray:
    """float32 (n, N, 2): real/imag of ``fftshift(fft(fid))`` over the full width, computed in single precision
    (the input of exported TFLite/SavedModel graphs)."""
    return _real_imag(_shifted_spectrum(np.atleast_2d(fids).astype(np.complex64)))


def resample_fids(fids, dwell_s: float, new_dwell_s: float, new_n_points: int) -> np.ndarray:
    """Data FIDs on another sampling (for a model or basis of another bandwidth/points): complex (n, new_n_points).

    A wider acquired bandwidth is first low-passed to the new one in the frequency domain (bins outside
    +-1/(2 new_dwell) removed, so their noise does not alias in); the new sampling times are then interpolated
    (degree-7 Lagrange, as :meth:`mrs_tf.BasisSet.resample`); times beyond the acquisition are zero-filled, which
    only truncates signals that have already decayed (check the data's linewidth). A narrower acquired bandwidth
    cannot be widened: :class:`~mrs_tf.errors.ProtocolError`.
    """
    from mrs_tf.core.errors import ProtocolError

    arr = as_fid_matrix(fids).astype(np.complex128)
    n = arr.shape[1]
    if new_dwell_s < dwell_s * (1 - 1e-9):
        raise ProtocolError(f"data bandwidth {1 / dwell_s:g} Hz is narrower than the {1 / new_dwell_s:g} Hz needed; "
                            f"it cannot be resampled up")
    if new_dwell_s > dwell_s * (1 + 1e-9):
        freq = np.fft.fftfreq(n, dwell_s)
        spec = np.fft.fft(arr, axis=1)
        spec[:, np.abs(freq) >= 0.5 / new_dwell_s] = 0
        arr = np.fft.ifft(spec, axis=1)
    n_avail = int(np.floor((n - 1) * dwell_s / new_dwell_s)) + 1
    n_take = min(new_n_points, n_avail)
    if n_take < 16:
        raise ProtocolError("too few points after resampling")
    # the low-passed FID is band-limited: interpolate it like BasisSet.resample does a basis signal
    out = np.zeros((len(arr), new_n_points), complex)
    out[:, :n_take] = lagrange_interpolate(arr, dwell_s, np.arange(n_take) * new_dwell_s)
    return out


#: how far (+-ppm) :func:`frequency_reference` looks for the metabolite peaks by default (``mrs-tf quantify``'s and
#: ``mrs-tf fit``'s referencing too)
REFERENCE_SEARCH_PPM = 0.5


def frequency_reference(fids, basis,
                        search_ppm: float = REFERENCE_SEARCH_PPM) -> tuple[np.ndarray, np.ndarray]:
    """Put each spectrum's metabolite peaks where the basis has them: the global offset (Hz; positive = towards
    lower ppm) maximising the correlation of the magnitude spectrum with the prior-weighted basis (NAA, Cr, Cho and
    the rest together, phase-independent) within +-``search_ppm``, removed from the FID. Returns (corrected FIDs,
    offsets in Hz). For offsets beyond what a network was trained on (+-0.2 ppm for mrs-tf's). Lipids several
    times NAA's height do not move it: see :func:`input_scores`."""
    from mrs_tf.physics.metabolites import prior_means

    arr = as_fid_matrix(fids)
    template = prior_means(basis.names) @ basis.fids
    corr, shift_hz = magnitude_correlation(arr, template, basis.dwell_s, basis.field_mhz, search_ppm)
    shifts = shift_hz[np.argmax(corr, axis=1)]
    # lipids several times NAA's height pull the match towards NAA's template on their 1.3 ppm line (peaks read
    # 0.5-0.7 ppm low): where input_scores' lipid-free match puts them near home, search only near home
    low = np.flatnonzero(shifts / basis.field_mhz > LIPID_FREE_SEARCH_PPM)
    if len(low) and search_ppm > LIPID_FREE_SEARCH_PPM:
        home = low[np.abs(input_scores(arr[low], basis, search_ppm=search_ppm).offset_ppm) <= LIPID_FREE_SEARCH_PPM]
        if len(home):
            corr, shift_hz = magnitude_correlation(arr[home], template, basis.dwell_s, basis.field_mhz,
                                                   LIPID_FREE_SEARCH_PPM)
            shifts[home] = shift_hz[np.argmax(corr, axis=1)]
    t = np.arange(arr.shape[1]) * basis.dwell_s
    return arr * np.exp(-2j * np.pi * shifts[:, None] * t[None, :]), shifts


def magnitude_correlation(fids, templates, dwell_s: float, field_mhz: float,
                          search_ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised cross-correlation of magnitude spectra (zero-filled x2; data apodised by 4 Hz, templates by a 6 Hz
    Voigt), phase-independent: ``(corr (n, L) in [-1, 1], shift_hz (L,))`` for every shift within +-``search_ppm``
    (Hz; positive = the data sit towards lower ppm than the template). ``templates``: one FID (N,) for every spectrum
    or one per spectrum (n, N). The frequency search of QUEST, the hybrid's start and :func:`frequency_reference`."""
    arr = as_fid_matrix(fids)
    n = arr.shape[1]
    t = np.arange(n) * dwell_s
    ref = np.abs(np.fft.fft(np.atleast_2d(templates) * np.exp(-np.pi * 6.0 * t - (np.pi * 6.0 * t) ** 2 / 2.77),
                            2 * n, axis=-1))
    dat = np.abs(np.fft.fft(arr * np.exp(-np.pi * 4.0 * t), 2 * n, axis=-1))
    ref = ref - ref.mean(axis=1, keepdims=True)
    dat = dat - dat.mean(axis=1, keepdims=True)
    ref /= np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-300)
    dat /= np.maximum(np.linalg.norm(dat, axis=1, keepdims=True), 1e-300)
    corr = np.fft.ifft(np.fft.fft(dat, axis=-1) * np.conj(np.fft.fft(ref, axis=-1)), axis=-1).real  # [lag]: dat[k+lag]
    hz_per_bin = 1.0 / (2 * n * dwell_s)
    max_lag = int(search_ppm * field_mhz / hz_per_bin)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    return corr[:, lags], lags * hz_per_bin


@dataclass
class InputScores:
    """What :func:`input_scores` measures per spectrum (each (n,)): ``as_is`` and ``conjugated``, the best normalised
    correlation of the magnitude spectrum with the basis's as it is and complex-conjugated (frequency-mirrored);
    ``offset_ppm``, where the as-is match puts the peaks against the basis (+ = at higher ppm; +-0.01 ppm);
    ``water_to_naa``, the residual water peak's height over NAA's (the largest magnitude in 4.3-5.0 ppm over that in
    1.9-2.15 ppm, both moved by the offset: water as tall as NAA scores 0.6-1.5, the Philips volunteers as read
    about 18, after HLSVD removal 0.2); ``naa_over_noise``,
    NAA's height in the same 4 Hz-apodised spectrum of the first ``duration_s`` (as it is or mirrored, whichever is
    taller) over the noise's standard deviation there (from the last quarter of the FID): pure noise scores up to
    about 5.2, spectra of SNR 2 from 3.2, SNR 3 from 4.9, SNR 10 from 16 (1st percentiles, synthetic spectra of
    five protocols; SNR as :func:`mrs_tf.synthesize` defines it); it underestimates high SNRs of narrow lines,
    whose signal is still in the FID's tail; ``line_hz``,
    the Lorentzian broadening (Hz, on :data:`LINE_GRID_HZ`) of the prior-weighted basis (with 3 Hz Gaussian) whose
    magnitude spectrum over 1.8-3.4 ppm best matches the spectrum's at the measured offset: spectra synthesised
    with Lorentzian 1-12 Hz and Gaussian 2-14 Hz score >= 26 Hz on 0-0.2 %, with Lorentzian 20-25 Hz on 60-62 %,
    25-35 Hz on 96-97 %, with water up to 20x NAA's height on 0-0.4 % (512 spectra, SNR 5-100, three protocols);
    ``lipid_to_naa``, the largest magnitude in 1.15-1.45 ppm (the lipids' 1.3 ppm methylene line, MM14 and lactate
    under it) over NAA's in 1.9-2.15 ppm, both moved by the offset (see :func:`input_scores` for how lipids do not
    move the offset)."""

    as_is: np.ndarray
    conjugated: np.ndarray
    offset_ppm: np.ndarray
    water_to_naa: np.ndarray
    naa_over_noise: np.ndarray
    line_hz: np.ndarray
    lipid_to_naa: np.ndarray | None = None


#: half-width (ppm) of the band about the water frequency that :func:`input_scores` leaves out of its matches
WATER_MASK_PPM = 0.7
#: the band (ppm, at the basis's positions) that :func:`input_scores` leaves out of its lipid-free match: the lipids'
#: 0.9, 1.3 (and 1.6) ppm lines, MM09-MM14 and lactate
LIPID_BAND_PPM = (0.5, 1.75)
#: how far (ppm) the lipid-free match searches: the networks' training offsets (+-0.2 ppm) and a margin
LIPID_FREE_SEARCH_PPM = 0.35
#: a full search's offset below -LIPID_FREE_SEARCH_PPM gives way to the lipid-free match's where that match scores no
#: more than this below it. Lipids 5x NAA's height matched NAA's template 0.7 ppm low on 100 % of 1,024 spectra (four
#: protocols); the lipid-free match then takes over on 92-94 % (20x: 74-98 %), and on 0.1-0.8 % of spectra truly
#: moved 0.5-1.1 ppm low (those score 0.10-0.47 lower near home without the band than far with it)
LIPID_FREE_SLACK = 0.08
#: the Lorentzian broadenings (Hz) :func:`input_scores` tries for ``line_hz``
LINE_GRID_HZ = np.array([0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 22.0, 26.0, 30.0, 35.0, 40.0])


def input_scores(fids, basis, search_ppm: float = 0.5, duration_s: float | None = 0.1,
                 chunk: int = 256) -> InputScores:
    """Is each spectrum what a quantifier of ``basis`` can read? One magnitude spectrum per FID gives
    :class:`InputScores`: the match with the prior-weighted basis as it is and frequency-mirrored (the other sign
    convention: every peak at ``2 ref_ppm - ppm``, NAA near 7.3 ppm; over shifts within +-``search_ppm``,
    :func:`magnitude_correlation`'s measure), the offset of that match, the residual water's height over NAA's, the
    noise and the line width.

    Cheap enough for :meth:`mrs_tf.Quantifier.quantify` to run on every spectrum: data and basis are cut to their
    first ``duration_s`` seconds (None: all points; after the 4-6 Hz apodisation the scores of 1,024 spectra with
    water, lipids and baselines moved by <= 0.012 at 0.1 s, 0.05 at 0.06 s), the conjugate's magnitude spectrum is
    the data's reversed (|FFT(x*)[k]| = |FFT(x)[-k]|), single precision and real FFTs for the correlations,
    ``chunk`` spectra at a time (cache-sized: 0.24-0.29 s for 8,192 spectra of 2,048 points at 4 kHz on this 2-core
    machine; the windows' maxima compare only the bins a window can reach)."""
    from scipy import fft as sfft

    from mrs_tf.physics.metabolites import prior_means

    arr = as_fid_matrix(fids)
    template = prior_means(basis.names) @ basis.fids
    m = arr.shape[1] if duration_s is None else min(arr.shape[1], max(int(np.ceil(duration_s / basis.dwell_s)), 64))
    nfft, t = 2 * m, np.arange(m) * basis.dwell_s

    def normalised(mag):
        mag = mag - mag.mean(axis=-1, keepdims=True)
        return mag / np.maximum(np.linalg.norm(mag, axis=-1, keepdims=True), 1e-300)

    ref = normalised(np.abs(np.fft.fft(template[:m] * np.exp(-np.pi * 6.0 * t - (np.pi * 6.0 * t) ** 2 / 2.77),
                                       nfft)))
    ref_f = np.conj(sfft.rfft(ref)).astype(np.complex64)
    hz_per_bin = 1.0 / (nfft * basis.dwell_s)
    max_lag = int(search_ppm * basis.field_mhz / hz_per_bin)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
    reverse = (-np.arange(nfft)) % nfft
    apod = np.exp(-np.pi * 4.0 * t)
    ppm_axis = basis.ref_ppm - np.fft.fftfreq(nfft, basis.dwell_s) / basis.field_mhz
    out = InputScores(*(np.empty(len(arr)) for _ in range(7)))
    # the lipid-free match: data and template without the lipids' band, searched near home only
    lipid_bins = np.flatnonzero((ppm_axis > LIPID_BAND_PPM[0]) & (ppm_axis < LIPID_BAND_PPM[1]))
    ref_free = ref.copy()
    ref_free[lipid_bins] = np.median(ref)
    ref_free_f = np.conj(sfft.rfft(normalised(ref_free))).astype(np.complex64)
    near_lag = int(min(LIPID_FREE_SEARCH_PPM, search_ppm) * basis.field_mhz / hz_per_bin)
    near_lags = np.r_[0:near_lag + 1, -near_lag:0]
    # NAA, Glx, Cr, Cho: away from the water's and the lipids' long magnitude-mode tails (over 0.5-4.1 ppm a water
    # 10x NAA's height read as broad lines on 31-45 % of spectra, here 7-9 %)
    band = np.flatnonzero((ppm_axis > 1.8) & (ppm_axis < 3.4))
    widths = normalised(np.abs(np.fft.fft(template[:m] * apod * np.exp(-np.pi * LINE_GRID_HZ[:, None] * t - (
        np.pi * 3.0 * t) ** 2 / 2.77), nfft, axis=-1))[:, band])                          # (W, band)
    water_bins = np.flatnonzero(np.abs(ppm_axis - basis.ref_ppm) < WATER_MASK_PPM)
    n_tail = max(arr.shape[1] // 4, 1)
    apod_energy = float((apod ** 2).sum())
    for i in range(0, len(arr), chunk):
        rows = slice(i, i + chunk)
        raw = np.abs(sfft.fft((arr[rows, :m] * apod).astype(np.complex64), nfft, axis=-1, workers=-1))
        masked = raw.copy()  # the matches without the residual water, whose tails would pull them
        masked[:, water_bins] = np.median(raw, axis=1, keepdims=True)
        mag = normalised(masked)
        for name, dat in (("as_is", mag), ("conjugated", mag[:, reverse])):
            corr = sfft.irfft(sfft.rfft(dat, axis=-1, workers=-1) * ref_f, nfft, axis=-1, workers=-1)
            best = np.argmax(corr[:, lags], axis=1)
            getattr(out, name)[rows] = corr[np.arange(len(corr)), lags[best]]
            if name == "conjugated":  # where a mirrored spectrum's NAA is: for the noise test below
                mirrored_offset = -lags[best] * hz_per_bin / basis.field_mhz
            if name == "as_is":
                out.offset_ppm[rows] = _refined_offset(corr, lags[best], nfft) * hz_per_bin / basis.field_mhz
        # lipids many times NAA's height match NAA's template 0.5-0.8 ppm low (only ever low: NAA's template on the
        # 1.3 or 0.9 ppm line); where the spectrum without its lipid band matches near home about as well, that is
        # where the peaks are
        low = np.flatnonzero(out.offset_ppm[rows] < -LIPID_FREE_SEARCH_PPM)  # only those: off the hot path
        if len(low):
            free = masked[low]
            free[:, lipid_bins] = np.median(raw[low], axis=1, keepdims=True)
            corr = sfft.irfft(sfft.rfft(normalised(free), axis=-1, workers=-1) * ref_free_f, nfft, axis=-1,
                              workers=-1)
            best = np.argmax(corr[:, near_lags], axis=1)
            use = corr[np.arange(len(corr)), near_lags[best]] >= out.as_is[rows][low] - LIPID_FREE_SLACK
            out.offset_ppm[rows][low[use]] = (_refined_offset(corr, near_lags[best], nfft) * hz_per_bin /
                                              basis.field_mhz)[use]
        lag = np.rint(-out.offset_ppm[rows] * basis.field_mhz / hz_per_bin).astype(int)  # data[k + lag] ~ basis[k]
        moved = normalised(raw[np.arange(len(raw))[:, None], (band[None, :] + lag[:, None]) % nfft])
        out.line_hz[rows] = LINE_GRID_HZ[np.argmax(moved @ widths.T, axis=1)]
        # the tallest bins of water (4.3-5.0 ppm), NAA (1.9-2.15) and the lipids' 1.15-1.45 ppm, moved by the offset
        water = _window_top(raw, ppm_axis, out.offset_ppm[rows], 4.3, 5.0)
        naa = _window_top(raw, ppm_axis, out.offset_ppm[rows], 1.9, 2.15)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.lipid_to_naa[rows] = _window_top(raw, ppm_axis, out.offset_ppm[rows], 1.15, 1.45) / np.maximum(
                naa, 1e-30)
        # a frequency-mirrored spectrum is not silent: its NAA sits at 2 ref_ppm - 2.01 ppm
        naa_signal = np.maximum(naa, _window_top(raw[:, reverse], ppm_axis, mirrored_offset, 1.9, 2.15))
        tail = arr[rows, -n_tail:].astype(np.complex64)  # the noise: (var re + var im) / 2, in the spectrum's units
        tail -= tail.mean(axis=1, keepdims=True)
        noise = np.sqrt(np.mean(tail.real ** 2 + tail.imag ** 2, axis=1) / 2 * apod_energy)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.water_to_naa[rows] = np.where(naa > 0, water / np.maximum(naa, 1e-30), 0.0)
            out.naa_over_noise[rows] = np.where(noise > 0, naa_signal / noise, np.inf)
    return out


def mirror_scores(fids, basis, search_ppm: float = 0.5, duration_s: float | None = 0.1,
                  chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(as_is, conjugated)`` of :func:`input_scores`: how well each spectrum matches the basis as it is and
    frequency-mirrored, each (n,) in [-1, 1]."""
    scores = input_scores(fids, basis, search_ppm, duration_s, chunk)
    return scores.as_is, scores.conjugated


#: a spectrum that matches the basis's pattern less than this as it is, and is not mirrored, is no spectrum of the
#: basis's kind (:func:`lacks_pattern`)
NO_PATTERN_LIMIT = 0.55


def lacks_pattern(as_is, conjugated) -> np.ndarray:
    """The spectrum matches the basis poorly as it is (below :data:`NO_PATTERN_LIMIT`) and does not look mirrored
    (:func:`looks_mirrored`): no metabolite spectrum of the basis's kind, e.g. a water reference (unsuppressed water)
    given as the data, whose water removal leaves only the water's tails. Measured: brain-like synthetic spectra
    score >= 0.58 as they are at SNR 3-100 over four protocols (see :func:`looks_mirrored`) and >= 0.70 at SNR >= 10
    (127.7 MHz TE 35, lines up to 30 Hz, lipids up to 2 NAA heights, 0.1th percentile of 1,024 per set); the two
    Philips volunteers 0.81 / 0.89; their water references, water removed, 0.03 / 0.44 (the first looks mirrored,
    0.65 conjugated). Pure noise scores <= 0.37 (1 kHz: up to 0.53): this says so too, and
    :class:`InputScores`' ``naa_over_noise`` tells the two apart."""
    as_is = np.asarray(as_is, float)
    return (as_is < NO_PATTERN_LIMIT) & ~looks_mirrored(as_is, conjugated)


def looks_mirrored(as_is, conjugated) -> np.ndarray:
    """The rule on :func:`mirror_scores`: the conjugated data match the basis well (> 0.4) and clearly better (by
    > 0.2) than the data as they are. Measured: synthetic spectra at SNR 3-100 (residual water and lipids
    included; 2,048 for each of four protocols, 123.2-127.7 MHz, 1,024-8,192 points, 1-4 kHz) score >= 0.58 as they
    are and <= 0.37 conjugated (the reverse when mirrored), pure noise <= 0.37 on both (1 kHz: up to 0.53, but
    :class:`InputScores`' ``naa_over_noise`` says noise first); the two Philips volunteers with their water removed
    0.86 / 0.93 as they are and 0.02 / 0.01 conjugated; as read (water 18x NAA's height) 0.27 and 0.30: the water
    dominates both, which is why the network's path flags ``residual_water`` first."""
    as_is, conjugated = np.asarray(as_is, float), np.asarray(conjugated, float)
    return (conjugated > 0.4) & (conjugated > as_is + 0.2)


def _refined_offset(corr: np.ndarray, k: np.ndarray, nfft: int) -> np.ndarray:
    """Minus the lag ``k`` (n,) of each row's correlation maximum, refined by a parabola through its neighbours (bins;
    times Hz per bin over the field: the offset in ppm, + = at higher ppm)."""
    y0, ym, yp = (corr[np.arange(len(corr)), (k + d) % nfft] for d in (0, -1, 1))
    curv = ym - 2 * y0 + yp
    frac = np.where(curv < 0, 0.5 * (ym - yp) / np.where(curv < 0, curv, -1.0), 0.0)
    return -(k + np.clip(frac, -0.5, 0.5))


def _window_top(mag, ppm_axis: np.ndarray, offset_ppm, low: float, high: float) -> np.ndarray:
    """Per row of ``mag`` (n, nfft), the largest value in ``low``-``high`` ppm moved by that row's ``offset_ppm``
    (bins' shifts ``ppm_axis``); 0 where the window holds no bin. Only the bins that some row's window can reach
    are compared (the windows are ~0.3 ppm of a 16-32 ppm spectrum)."""
    offset = np.asarray(offset_ppm, float)
    out = np.zeros(len(mag), mag.dtype if np.issubdtype(mag.dtype, np.floating) else float)
    finite = offset[np.isfinite(offset)]
    if not len(finite):
        return out
    cols = np.flatnonzero((ppm_axis > low + finite.min()) & (ppm_axis < high + finite.max()))
    if not len(cols):
        return out
    ppm = ppm_axis[cols][None, :] - offset[:, None]
    return np.where((ppm > low) & (ppm < high), mag[:, cols], 0.0).max(axis=1)


def eddy_current_correction(fids, water_fid, reliable: float = 0.05) -> np.ndarray:
    """Klose's eddy-current correction: every FID multiplied by ``exp(-i phase_w(t))``, the unwrapped phase of the
    unsuppressed water reference acquired with the same gradients. It removes time-varying phase from eddy currents
    together with the zero-order phase and puts water exactly at the reference frequency (4.65 ppm), so it also
    frequency-references the data to water. Where the water signal has decayed below ``reliable`` of its start the
    phase is noise: from there on it is continued as a straight line fitted to the last reliable tenth (a constant
    frequency), so that the water's noise does not enter the metabolites' tail. The water FID must share the data's
    points and dwell time."""
    from mrs_tf.core.errors import ProtocolError

    arr = as_fid_matrix(fids)
    water = np.asarray(water_fid).reshape(-1)
    if water.shape[0] != arr.shape[1]:
        raise ProtocolError(f"water reference has {water.shape[0]} points, the data {arr.shape[1]}")
    phase = np.unwrap(np.angle(water))
    mag = np.abs(water)
    below = np.flatnonzero(mag < reliable * mag[:8].mean())
    end = int(below[0]) if len(below) else len(water)
    if 16 <= end < len(water):
        k = np.arange(len(water))
        fit_from = max(end - max(end // 10, 8), 0)
        slope, icpt = np.polyfit(k[fit_from:end], phase[fit_from:end], 1)
        phase[end:] = icpt + slope * k[end:]
    return arr * np.exp(-1j * phase)[None, :]


def singlet_shape(fids, dwell_s: float, field_mhz: float, ref_ppm: float = 4.65, ppm=(1.92, 2.12),
                  zero_fill: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """FWHM (Hz) and asymmetry of the tallest line in ``ppm`` (default NAA's singlet at 2.01 ppm) of each FID: its
    absorption at the zero-order phase that makes the line tallest (the phase that turns the band's largest complex
    point real and positive), half-widths at half height on the lower- and
    higher-frequency sides ``lo``, ``hi``; asymmetry ``(hi - lo) / (hi + lo)`` (0 for a Lorentzian or Gaussian line,
    +-1 at the extremes). NaN where the line is not found (no half-height crossing inside the band +- 20 Hz)."""
    arr = as_fid_matrix(fids)
    nfft = zero_fill * arr.shape[1]
    freq = np.fft.fftshift(np.fft.fftfreq(nfft, dwell_s))
    ppm_axis = ref_ppm + freq / field_mhz
    band = (ppm_axis >= min(ppm)) & (ppm_axis <= max(ppm))
    near = np.flatnonzero((ppm_axis >= min(ppm) - 20.0 / field_mhz) & (ppm_axis <= max(ppm) + 20.0 / field_mhz))
    spec = np.fft.fftshift(np.fft.fft(arr, nfft, axis=1), axes=1)[:, near]
    inband = band[near]
    fwhm, asym = np.full(len(arr), np.nan), np.full(len(arr), np.nan)
    f = freq[near]
    for i, row in enumerate(spec):
        k = int(np.argmax(np.where(inband, np.abs(row), -np.inf)))
        r = (row * np.exp(-1j * np.angle(row[k]))).real
        half = r[k] / 2
        lo = np.flatnonzero(r[:k] <= half)
        hi = np.flatnonzero(r[k:] <= half)
        if r[k] <= 0 or not len(lo) or not len(hi):
            continue
        a, b = lo[-1], k + hi[0]
        f_lo = np.interp(half, [r[a], r[a + 1]], [f[a], f[a + 1]])
        f_hi = np.interp(half, [r[b], r[b - 1]], [f[b], f[b - 1]])
        w_lo, w_hi = f[k] - f_lo, f_hi - f[k]
        fwhm[i], asym[i] = w_lo + w_hi, (w_hi - w_lo) / (w_hi + w_lo)
    return fwhm, asym


def spectral_registration(fids, dwell_s: float, window_s: float = 0.2, iterations: int = 2,
                          reference=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequency and phase alignment of transients before averaging (spectral registration, Near et al. MRM 2015):
    each FID ``x_k`` is fitted to the reference over its first ``window_s`` seconds as
    ``x_k(t) exp(i (2 pi f_k t + phi_k))`` (least squares in the time domain), then corrected. The reference is the
    mean of the transients (or ``reference``), re-formed from the aligned ones ``iterations`` times.

    Returns (aligned FIDs (n, points), f_k in Hz, phi_k in degrees)."""
    import scipy.optimize

    arr = as_fid_matrix(fids).astype(complex)
    n_win = max(8, min(arr.shape[1], int(round(window_s / dwell_s))))
    t = np.arange(arr.shape[1]) * dwell_s
    freqs, phases = np.zeros(len(arr)), np.zeros(len(arr))
    for _ in range(max(1, iterations)):
        ref = (np.asarray(reference).reshape(-1) if reference is not None
               else (arr * np.exp(1j * (2 * np.pi * freqs[:, None] * t + phases[:, None]))).mean(0))[:n_win]
        scale = np.abs(ref).max() or 1.0
        for k, x in enumerate(arr[:, :n_win]):
            def resid(p, x=x):
                d = ref - x * np.exp(1j * (2 * np.pi * p[0] * t[:n_win] + p[1]))
                return np.concatenate([d.real, d.imag]) / scale

            freqs[k], phases[k] = scipy.optimize.least_squares(resid, [freqs[k], phases[k]], method="lm").x
    aligned = arr * np.exp(1j * (2 * np.pi * freqs[:, None] * t + phases[:, None]))
    return aligned, freqs, np.rad2deg((phases + np.pi) % (2 * np.pi) - np.pi)
