"""Quantification with a trained network: ``Quantifier.load(folder).quantify(fids, dwell_s=..., field_mhz=...)``.

A thin facade over small parts: the model's folder (:class:`mrs_tf.nn.bundle.ModelBundle`: files, training basis,
units, inference), the protocol check (:mod:`mrs_tf.quantify.protocol`: a mismatch in points, dwell time, field or
echo time is refused with a message naming every difference and the way out, never silently accepted), the table of
the network's estimates (:mod:`mrs_tf.quantify.tables`) and the network-initialised fit (:mod:`mrs_tf.fitting.hybrid`).
Water scaling is :mod:`mrs_tf.fitting.water`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mrs_tf.core.errors import MRSError, ProtocolError
from mrs_tf.core.table import ResultTable
from mrs_tf.nn.bundle import ModelBundle
from mrs_tf.physics.synth import concentration_ranges
from mrs_tf.preprocess.input_flags import (BROAD_LINE_LIMIT_HZ, OFFSET_MARGIN_PPM, OFFSET_SEARCH_PPM,
                                           flag_fit_reach, set_flag, wide_scores)
from mrs_tf.preprocess.spectra import REFERENCE_SEARCH_PPM, as_fid_matrix
from mrs_tf.quantify import protocol
from mrs_tf.quantify.tables import (FIT_LIPID_DRIFT, LIPID_LIMIT, flag_lipids, flag_pattern, flag_prior_dominated,
                                   network_table, prior_columns, status_columns)

__all__ = ["Quantifier", "RESIDUAL_WATER_LIMIT", "NO_SIGNAL_LIMIT", "OFFSET_MARGIN_PPM", "OFFSET_SEARCH_PPM",
           "BROAD_LINE_LIMIT_HZ", "LIPID_LIMIT", "lipid_limit"]

#: the network's path flags a spectrum ``residual_water`` where the water peak is taller than this many NAA peaks
#: (:class:`mrs_tf.preprocess.spectra.InputScores`' ``water_to_naa``). The networks learnt water up to 2x NAA
#: (``press3t_te30``: none); measured on 512 spectra per height (press3t_short_te; three protocols): at 5x NAA 1 % of spectra score
#: above 6 and the ratios' MAPE rises by 0.2-1.3 points, at 10x (median score 4.8) by 1.3-1.9, at 20x (9.3) by 4-6.
RESIDUAL_WATER_LIMIT = 6.0
#: the network's path flags a spectrum ``no_signal`` where NAA's peak is below this many noise standard deviations
#: (:class:`mrs_tf.preprocess.spectra.InputScores`' ``naa_over_noise``): pure noise scored up to 5.2 (2,048 FIDs for
#: each of five protocols), spectra of SNR 2 from 3.2 and of SNR 3 from 4.9 (1st percentiles). Pure noise gave
#: tNAA/tCr 1.5-1.9 and Ins/tCr 0.7-1.0 from press3t_short_te, with sigmas like an SNR-10 spectrum's.
NO_SIGNAL_LIMIT = 6.0
#: the network's path (and the fits: :func:`~mrs_tf.preprocess.input_flags.flag_broad_lines`) flags a spectrum
#: ``broad_lines`` where :class:`~mrs_tf.preprocess.spectra.InputScores`'
#: ``line_hz`` reaches this (Hz; for networks that learnt Lorentzians up to 12 Hz, as both shipped ones). Measured
#: with press3t_short_te (benchmarks/input_checks.py and RESULTS.md; 512 spectra per row, three protocols):
#: Lorentzian 1-12 Hz (its training) flagged 0-0.4 %, 20-25 Hz 60-62 % (MAPE 1.5-2x), 25-35 Hz 96-97 % (2.5-3x);
#: the Philips volunteers score 6 Hz.


def lipid_limit(max_lipid_amp: float) -> float:
    """The ``lipid_contamination`` limit on ``lipid_to_naa`` for a network that learnt lipids up to ``max_lipid_amp``
    NAA heights: :data:`LIPID_LIMIT` at 0.3 (or less), and as the training spectra's 99.9th percentile grows beyond
    (0.69-0.72 at 0.3, 1.5-1.6 at 1.0: 1.2 per NAA height)."""
    return LIPID_LIMIT + 1.2 * max(float(max_lipid_amp) - 0.3, 0.0)


class Quantifier(ModelBundle):
    """A trained network and the protocol it belongs to (see :class:`~mrs_tf.nn.bundle.ModelBundle` for loading)."""

    def use_basis(self, basis, source: str | None = None) -> "Quantifier":
        """Reconstruct, reference and report with ``basis`` (checked by :meth:`check_basis`) instead of the
        training basis; e.g. the basis file a QUEST fit of the same data uses. Returns self."""
        self._basis = self.check_basis(basis, source)
        return self

    def check(self, fids, dwell_s: float, field_mhz: float, te_ms: float | None = None,
              sequence: str | None = None) -> np.ndarray:
        """Validate data against the model's protocol (``te_ms`` where the data's echo time is known, ``sequence``
        where its sequence is: ``press``, ``steam``, ``slaser``, ...); returns complex (n, n_points)."""
        arr = as_fid_matrix(fids)
        self.check_protocol(arr.shape[1], dwell_s, field_mhz, te_ms, sequence=sequence)
        bad = ~np.all(np.isfinite(arr), axis=1)
        if bad.any():
            raise MRSError(f"spectra {np.flatnonzero(bad)[:10].tolist()} contain NaN or Inf")
        zero = ~np.any(arr, axis=1)
        if zero.any():
            raise MRSError(f"spectra {np.flatnonzero(zero)[:10].tolist()} are all zeros")
        return arr

    def check_protocol(self, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None = None,
                       resample: bool = False, sequence: str | None = None) -> None:
        """ProtocolError when data of ``n_points`` points, dwell ``dwell_s`` (s), field ``field_mhz`` (MHz) and echo
        time ``te_ms`` (ms, where known) do not match the model's protocol; the message lists every mismatch at
        once, each with its way out. ``resample``: points and a wider bandwidth are fine (they will be resampled)."""
        message = self.protocol_mismatch(n_points, dwell_s, field_mhz, te_ms, resample, sequence=sequence)
        if message:
            raise ProtocolError(message)

    def protocol_mismatch(self, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None = None,
                          resample: bool = False, sequence: str | None = None) -> str:
        """Every mismatch between the data's protocol and the model's, and the way out, in one message ('' when
        they match); see :func:`mrs_tf.quantify.protocol.mismatch`."""
        return protocol.mismatch(self, n_points, dwell_s, field_mhz, te_ms, resample, sequence=sequence)

    def predict(self, fids, dwell_s: float, field_mhz: float, batch_size: int = 4096, te_ms: float | None = None,
                shift_average: int = 1):
        """(mean (n, M), sd (n, M) or None) in basis units, after :meth:`check`; ``shift_average``: see
        :meth:`~mrs_tf.nn.bundle.ModelBundle.infer`."""
        return self.infer(self.check(fids, dwell_s, field_mhz, te_ms), batch_size, dwell_s, field_mhz, te_ms,
                          shift_average=shift_average)

    def quantify(self, fids, dwell_s: float | None = None, field_mhz: float | None = None,
                 batch_size: int = 4096, te_ms: float | None = None, *, method: str = "network", basis=None,
                 options=None, n_jobs: int | None = 2, fallback: bool = True, cross_check: bool = False,
                 fit_pulse: str | None = None, shift_average: int = 1, sequence: str | None = None) -> ResultTable:
        """Quantify every FID.

        ``method="network"`` (default): the table has ``<met>`` (basis units, mM for mrs-tf's basis), ``<met>_sd``
        (the network's sigma, when it has one), ``<met>_over_tCr``, and the same for NAA+NAAG, Cr+PCr, GPC+PCh,
        Glu+Gln: the value is the sum of the parts; its sd is the network's own sigma for the sum where the model
        outputs one (the parts' errors are correlated), else the parts' sigmas in quadrature.

        ``method="hybrid"``: the network's amplitudes start a short fit of QUEST's signal model with ``basis`` (a
        :class:`~mrs_tf.basis.BasisSet` or file, checked by :meth:`check_basis`; default: the basis set by
        :meth:`use_basis` or the training basis) and ``options`` (:data:`mrs_tf.hybrid.HYBRID_OPTIONS` by
        default): :func:`mrs_tf.hybrid.fit`, QUEST's columns (CRLBs, fit diagnostics, ``status``) and ``method``
        per spectrum (``hybrid``, or ``quest_fallback`` where the refined fit was poor and QUEST's full search
        did better). ``n_jobs`` worker processes; ``fallback=False`` keeps every refined fit. A protocol-general
        network given neither ``basis`` nor ``options`` fits as ``mrs-tf quantify --method hybrid`` does: the in vivo
        model (:meth:`~mrs_tf.quest.QuestOptions.in_vivo`: residual water removed, spline baseline, 0.2-4.0 ppm,
        amplitudes >= 0 where ``fallback``) with mrs-tf's basis for the protocol, its MM as free components
        (:meth:`cross_check_basis`).

        ``cross_check=True`` (network): every spectrum is also fitted with the in vivo model from the network's
        answer (:mod:`mrs_tf.quantify.crosscheck`; ``basis`` or the model's basis for the protocol) and flagged
        ``fit_disagrees`` where a headline ratio to tCr differs beyond :data:`~mrs_tf.quantify.crosscheck.TOLERANCE`
        (:data:`~mrs_tf.quantify.crosscheck.SAME_BASIS_TOLERANCE` where the fit uses the network's own training basis);
        columns ``crosscheck_max_diff_pct`` and ``crosscheck_fit_status``. ``mrs-tf quantify`` does this by default
        for files of up to 64 spectra.

        ``fit_pulse`` (protocol-general networks, no ``basis``): the fits (hybrid, cross-check) use mrs-tf's basis
        for the data's protocol simulated with this shaped refocusing pulse
        (:data:`~mrs_tf.physics.pulses.REFOCUSING_PULSES`) instead of ideal pulses: closer to what a scanner's
        pulses do to coupled signals.

        ``sequence`` (``press``, ``steam``, ``slaser``, ...; :func:`mrs_tf.physics.protocols.sequence_kind` reads
        it from a name): where the data's sequence is known, another than the model's is refused (a PRESS network
        read sLASER TE 30 spectra with Ins/tCr +22 %, status ``ok``).

        ``shift_average`` (e.g. 5; ``mrs-tf quantify --shift-average``): the network's answer averaged over that many
        frequency offsets within +-0.04 ppm (:meth:`~mrs_tf.nn.bundle.ModelBundle.infer`): 2-9 % lower MAPE on
        simulated spectra (their sigma coverage stays 63-72 %); ``shift_average`` times the network's time. On two
        real scans it moved the ratios by up to 7 % (benchmarks/RESULTS.md), neither nearer to LCModel's nor
        further on the whole, so it is not the default.
        """
        if method not in ("network", "hybrid"):
            raise MRSError(f"unknown method {method!r}; use network or hybrid (mrs_tf.quest.fit for QUEST)")
        arr = self.check(fids, dwell_s, field_mhz, te_ms, sequence=sequence)
        if method == "hybrid":
            if self.general and basis is None and options is None:
                # the in vivo model, as mrs-tf quantify --method hybrid fits: with QUEST's time-domain model and no
                # water removal, 58 of 64 spectra of the network's own stream (residual water up to 2, lipids up to
                # 0.3 NAA heights) came out poor_fit, Lac far below zero under the lipids
                from mrs_tf.fitting.quest import QuestOptions

                options = QuestOptions.in_vivo(nonnegative=fallback)
                basis = self.cross_check_basis(arr.shape[1], dwell_s, field_mhz, te_ms, fit_pulse)
            table = self._hybrid(arr, dwell_s, field_mhz, batch_size, te_ms, basis, options, n_jobs, fallback,
                                 fit_pulse=fit_pulse, shift_average=shift_average)
            from mrs_tf.fitting.hybrid import HYBRID_OPTIONS

            return self._flag_inputs(table, arr, dwell_s, field_mhz, te_ms, network=False,
                                     fit_options=options or HYBRID_OPTIONS)
        from concurrent.futures import ThreadPoolExecutor

        # the input flags' scores (numpy, FFTs) computed while the network runs (TensorFlow): 7-14 % less time
        own = self.basis_for(arr.shape[1], dwell_s, field_mhz, te_ms)  # (``basis`` is the caller's, for the fits)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(wide_scores, arr, own)
            mean, sd = self.infer(arr, batch_size, dwell_s, field_mhz, te_ms, shift_average=shift_average)
            scores = pending.result()
        table = network_table(self.names, self.outputs, mean, sd)
        if sd is not None:  # which values are mostly the training prior (prior_dominated; the headline ones: status)
            table = prior_columns(table, concentration_ranges(self.names, self.training_synthesis()))
        table = flag_prior_dominated(self._flag_inputs(table, arr, dwell_s, field_mhz, te_ms, scores=scores))
        if cross_check:
            from mrs_tf.quantify import crosscheck

            fit = self._hybrid(arr, dwell_s, field_mhz, batch_size, te_ms,
                               self.cross_check_basis(arr.shape[1], dwell_s, field_mhz, te_ms, fit_pulse, basis),
                               crosscheck.fit_options(), n_jobs, fallback, mean=mean, fit_pulse=fit_pulse)
            given = None if basis is None else (Path(basis).name if isinstance(basis, (str, os.PathLike))
                                                else "the basis given")
            # no basis given: a network of train --basis is checked by a fit with its own training basis
            table = crosscheck.cross_check(table, fit, basis_label=self.fit_basis_label(given),
                                           own_basis=self.fits_with_training_basis(basis is not None))
        return table

    def training_synthesis(self):
        """The :class:`~mrs_tf.physics.synth.SynthesisConfig` of the network's training spectra: its
        train_config.json's, the protocol-general stream's (:data:`~mrs_tf.nn.general.GENERAL_SYNTHESIS`), else
        mrs-tf's default training synthesis."""
        from mrs_tf.nn.config import TRAINING_SYNTHESIS

        if self.general:
            from mrs_tf.nn.general import GENERAL_SYNTHESIS

            return GENERAL_SYNTHESIS
        cfg = self.train_config()
        return cfg.synthesis_config() if cfg is not None else TRAINING_SYNTHESIS

    def training_shift_ppm(self) -> float:
        """The largest frequency offset (ppm) the network saw in training (:meth:`training_synthesis`)."""
        return float(max(abs(v) for v in self.training_synthesis().shift_ppm))

    def _flag_inputs(self, table: ResultTable, arr: np.ndarray, dwell_s, field_mhz, te_ms,
                     network: bool = True, fit_options=None, scores=None) -> ResultTable:
        """``table`` with ``status``/``message`` per spectrum (added as ``ok``/``""`` where it has none), flagging data
        the numbers cannot be trusted on, whatever they look like (:func:`~mrs_tf.preprocess.spectra.input_scores`):

        * ``network`` only (the fits remove water, search the shift and say ``no_signal`` themselves): ``no_signal``,
          NAA's peak below :data:`NO_SIGNAL_LIMIT` noise deviations (pure noise: the network answers with numbers
          like its prior's); ``residual_water``, the water
          peak more than :data:`RESIDUAL_WATER_LIMIT` times NAA's height (e.g. a scan as read, water suppressed but
          not removed: Ins/tCr of a Philips volunteer 0.49 against LCModel's 0.86); ``offset_out_of_range``, the
          peaks further from the basis's positions than the network was trained on (:meth:`training_shift_ppm` plus
          :data:`OFFSET_MARGIN_PPM`; at 0.3 ppm its MAPE is 2-3x its in-range one); ``broad_lines``, lines broader
          than it learnt (:data:`BROAD_LINE_LIMIT_HZ`; a poor shim);
        * a hybrid fit's (``fit_options``, its :class:`~mrs_tf.quest.QuestOptions`): ``broad_lines``
          (:func:`~mrs_tf.preprocess.input_flags.flag_broad_lines`), ``offset_out_of_range``, the peaks further from
          the basis's than the fit's shift reaches (:func:`~mrs_tf.preprocess.input_flags.flag_offset`: the fit
          matches them to other peaks);
        * ``lipid_contamination``: the 1.3 ppm band (lipids, lactate) taller than the network learnt
          (:func:`lipid_limit`; a voxel near the skull: the network reads lipid lines as NAA and Glu) or, for the
          fits, than :data:`LIPID_LIMIT` (mrs-tf's in vivo fit misreads Ins and Glu there by 13-15 %);
        * ``no_metabolite_pattern``: the spectrum matches the basis's pattern poorly and is not mirrored
          (:func:`~mrs_tf.preprocess.spectra.lacks_pattern`): e.g. a water reference given as the data (the network
          read one as tNAA/tCr 1.25, Ins/tCr 0.98);
        * ``mirrored``: the spectrum matches the basis far better conjugated than as it is
          (:func:`~mrs_tf.preprocess.spectra.looks_mirrored`): data in the other frequency sign convention, every
          peak at 2 x 4.65 ppm minus its place. The network reads them as plausible-looking nonsense (Ins off by
          > 20 %) and a fit of them may converge; this flag overrides the others but ``no_signal``.

        ``scores``: :func:`~mrs_tf.preprocess.input_flags.wide_scores` of ``arr`` when already computed."""
        from mrs_tf.preprocess.spectra import LIPID_FREE_SEARCH_PPM

        status, message = status_columns(table, len(arr))

        def flag(i, name, text):
            set_flag(status, message, i, name, text)

        basis = self.basis_for(arr.shape[1], dwell_s, field_mhz, te_ms)
        scores, mirrored = scores if scores is not None else wide_scores(arr, basis)
        if network:
            limit = self.training_shift_ppm()
            for i in np.flatnonzero(np.abs(scores.offset_ppm) > limit + OFFSET_MARGIN_PPM):
                # where the default referencing would stop at its search's edge (offset_at_search_limit)
                far = abs(scores.offset_ppm[i]) > 0.9 * REFERENCE_SEARCH_PPM
                call = (f"frequency_reference(fids, basis, search_ppm={OFFSET_SEARCH_PPM:g})" if far
                        else "frequency_reference(fids, basis)")
                edge = (f"; further than mrs-tf quantify's referencing searches (+-{REFERENCE_SEARCH_PPM:g} ppm): "
                        f"check the scan's centre frequency" if far else ", as mrs-tf quantify does")
                fat = ("; or lipids several times NAA's height, whose 1.3 ppm line the match took for NAA's: look at "
                       "the spectrum" if scores.offset_ppm[i] < -LIPID_FREE_SEARCH_PPM else "")
                flag(i, "offset_out_of_range",
                     f"the peaks sit {scores.offset_ppm[i]:+.2f} ppm from the basis's positions, beyond the "
                     f"network's training range (+-{limit:g} ppm): its numbers are biased; reference the spectra "
                     f"first (mrs_tf.preprocess.{call}){edge}{fat}")
            # a network that learnt broader Lorentzians than 12 Hz gets the difference on top of the limit
            broad = BROAD_LINE_LIMIT_HZ + max(self.training_synthesis().lorentz_hz[1] - 12.0, 0.0)
            for i in np.flatnonzero(scores.line_hz >= broad):
                flag(i, "broad_lines",
                     f"the lines are as broad as the edge of what the network learnt or broader (the basis matches "
                     f"best broadened by {scores.line_hz[i]:g} Hz; its training spectra score less, all but 0-0.4 %"
                     f" of them below {broad:g} Hz): its ratios drift "
                     f"(Lorentzian 25-35 Hz: MAPE 2.5-3x); check the shim, or fit (method='hybrid', mrs-tf fit)")
            for i in np.flatnonzero(scores.water_to_naa > RESIDUAL_WATER_LIMIT):
                flag(i, "residual_water",
                     f"the residual water peak is {scores.water_to_naa[i]:.0f}x NAA's height (the networks learnt "
                     f"up to about 2x; beyond {RESIDUAL_WATER_LIMIT:g}x their ratios to tCr drift by tens of per "
                     f"cent): remove it first, e.g. mrs_tf.hlsvd.remove_band(fid, dwell_s, field_mhz, (4.2, 5.2)) "
                     f"for each FID, as mrs-tf quantify does")
        # after broad_lines, whose line-width match the lipids' broad 2.0-2.8 ppm lines spoil (lipids 3x NAA: 2 of 4
        # spectra 'broad'); a poor shim lowers NAA's peak against the 1.3 ppm band too, and says both. The fits too:
        # the in vivo fit with mrs-tf's basis (hybrid, cross-check) read Ins/tCr +81 % (median) there
        lipids = lipid_limit(self.training_synthesis().lipid_amp[1]) if network else LIPID_LIMIT
        drift = ("its ratios drift high (press3t_short_te's tNAA/tCr +7 % at 0.8-1.0x, +18 % at 1.2-1.5x)" if network
                 else FIT_LIPID_DRIFT)
        flag_lipids(status, message, scores.lipid_to_naa, lipids, drift, learnt=network)
        silent = scores.naa_over_noise < NO_SIGNAL_LIMIT
        for i in np.flatnonzero(mirrored & ~silent):
            flag(i, "mirrored", f"the spectrum matches the basis frequency-mirrored ({scores.conjugated[i]:.2f} "
                                f"conjugated against {scores.as_is[i]:.2f} as it is: the other frequency sign "
                                f"convention, every number is nonsense); quantify np.conj(fids) instead (mrs-tf: "
                                f"--conjugate)")
        # after the lipids: a spectrum of no metabolite pattern has no meaningful lipid score (a water reference
        # given as data scored 0.81); residual water, offsets and broad lines also spoil the match, and their own
        # flags name the cause (water 20x NAA: 4-26 % of spectra match below the limit)
        if not network and fit_options is not None:
            flag_fit_reach(status, message, scores, mirrored, fit_options.shift_reach_ppm(basis.field_mhz, 1))
        flag_pattern(status, message, scores, skip=silent if network else None)
        if network:  # noise alone: the other flags' measures are noise too, so this one is said alone
            for i in np.flatnonzero(silent):
                status[i], message[i] = "no_signal", (
                    f"no metabolite signal above the noise (NAA's peak {scores.naa_over_noise[i]:.1f}x the noise; "
                    f"pure noise scores up to about 5): the network's numbers would be its prior's; check the data "
                    f"(an empty voxel? averaging?)")
        table["status"], table["message"] = status, message
        return table

    def cross_check_basis(self, n_points: int, dwell_s: float, field_mhz: float, te_ms: float | None,
                          fit_pulse: str | None = None, basis=None):
        """The basis the cross-check fits with: ``basis`` where given; for a protocol-general network mrs-tf's basis
        for the data's protocol (``fit_pulse``: shaped refocusing) with free MM components in place of its one MM
        signal (:func:`mrs_tf.quantify.crosscheck.fit_basis`); else None (the network's training basis)."""
        if basis is not None or not self.general:
            return basis
        from mrs_tf.quantify import crosscheck

        return crosscheck.fit_basis(self.basis_for(n_points, dwell_s, field_mhz, te_ms, refocusing=fit_pulse))

    def fit_basis_label(self, given: str | None = None) -> str | None:
        """What the fits from the network's answer (hybrid, cross-check) fit with, for messages: ``given`` (the name
        of a basis the caller passed, e.g. the scan's own file), else the network's training basis file (a network
        of ``mrs-tf train --basis``), else None (mrs-tf's simulated basis)."""
        if given:
            return given
        cfg = None if self.general else self.train_config()
        if cfg is not None and cfg.basis_path:
            return f"the network's training basis ({Path(cfg.basis_path).name})"
        return None

    def fits_with_training_basis(self, basis_given: bool) -> bool:
        """Whether the fits from the network's answer use the network's own training basis (no basis given, and a
        network of ``mrs-tf train --basis``): the cross-check's tighter tolerance
        (:data:`~mrs_tf.quantify.crosscheck.SAME_BASIS_TOLERANCE`) then applies."""
        return not basis_given and self.fit_basis_label() is not None

    def _hybrid(self, arr, dwell_s, field_mhz, batch_size, te_ms, basis, options, n_jobs, fallback,
                mean=None, fit_pulse: str | None = None, shift_average: int = 1) -> ResultTable:
        """The network's amplitudes (``mean``: already predicted) as the start of :func:`mrs_tf.hybrid.fit` (see
        :meth:`quantify`) on ``arr``, FIDs already through :meth:`check`."""
        from mrs_tf.fitting import hybrid

        if basis is None:
            basis = (self.basis_for(arr.shape[1], dwell_s, field_mhz, te_ms, refocusing=fit_pulse) if self.general
                     else self.fit_basis())
        elif not (self.general and _of_sampling(basis, arr.shape[1], dwell_s)):
            basis = self.check_basis(basis)
        # else: a protocol-general network and a basis already at the data's sampling (the scan's own, prepared by
        # mrs_tf.basis_prep): fitted as given, also where it lacks signals the network quantifies
        if mean is None:
            mean, _ = self.infer(arr, batch_size, dwell_s, field_mhz, te_ms, shift_average=shift_average)
        initial = np.stack([mean[:, self.names.index(n)] if n in self.names else np.zeros(len(mean))
                            for n in basis.names], axis=1)
        return hybrid.fit(arr, basis, initial=initial, options=options, fallback=fallback, n_jobs=n_jobs,
                          check_inputs=False)  # checked by _flag_inputs


def _of_sampling(basis, n_points: int, dwell_s: float) -> bool:
    """``basis`` is a :class:`~mrs_tf.basis.BasisSet` with ``n_points`` at ``dwell_s``."""
    import math

    from mrs_tf.physics.basis import BasisSet

    return (isinstance(basis, BasisSet) and basis.n_points == n_points and
            math.isclose(basis.dwell_s, dwell_s, rel_tol=1e-6))
