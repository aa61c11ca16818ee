"""Shaped, slice-selective refocusing pulses in the density-matrix simulator (mrs_tf.physics.pulses)."""
from pathlib import Path

import numpy as np
import pytest

from mrs_tf.core.errors import ProtocolError
from mrs_tf.physics.basis import BasisSet, simulate_basis
from mrs_tf.physics.metabolites import METABOLITES, SpinSystem
from mrs_tf.physics.pulses import REFOCUSING_PULSES, RFPulse, sinc_pulse
from mrs_tf.physics.spin_sim import make_sequence, simulate_lines, simulate_metabolite_fid

FIELD, N, DWELL = 123.2, 2048, 1 / 4000.0
SIEMENS = Path(__file__).resolve().parents[2] / "shared/data/osprey/basis/3T_PRESS_Siemens_35ms_noMM.BASIS"


def test_hard_pulse_limit_is_the_ideal_simulation():
    """A 0.1 us rectangular pulse at one position is an ideal 180: the shaped path must give the same signal."""
    hard = RFPulse("hard", (1.0,), 1e-4, 1e6, positions=1)
    ideal = make_sequence("press", te1_ms=11, te2_ms=19)
    shaped = make_sequence("press", te1_ms=11, te2_ms=19, refocusing_pulse=hard, carrier_ppm=2.5)
    for name in ("Glu", "Lac", "GPC", "Cr"):
        a = simulate_metabolite_fid(METABOLITES[name], ideal, FIELD, 512, DWELL)
        b = simulate_metabolite_fid(METABOLITES[name], shaped, FIELD, 512, DWELL)
        assert np.abs(a - b).max() < 1e-9 * np.abs(a).max(), name


def test_small_tip_profile_is_the_fourier_transform_of_the_waveform():
    pulse = sinc_pulse(5.2, 1200.0, flip_deg=5.0)
    offsets = np.linspace(-1500, 1500, 61)
    small = np.sqrt(np.abs(pulse.profile(offsets)))  # |beta| = sin(flip / 2): proportional to the flip for small tips
    t = (np.arange(pulse.n_steps) + 0.5) * pulse.step_s
    ft = np.abs(np.exp(-2j * np.pi * offsets[:, None] * t[None, :]) @ np.asarray(pulse.amplitude))
    np.testing.assert_allclose(small / small.max(), ft / ft.max(), atol=0.02)
    # the nominal bandwidth is the small-tip one: half height at +-600 Hz
    assert np.interp(600.0, offsets, small / small.max()) == pytest.approx(0.5, abs=0.05)


def test_a_180_pulse_refocuses_the_slice_centre_and_nothing_far_outside():
    profile = np.abs(REFOCUSING_PULSES["sinc_5.2ms_1200hz"].profile(np.array([0.0, 1150.0])))
    assert profile[0] == pytest.approx(1.0, abs=1e-6)
    assert profile[1] < 0.05


def test_singlets_keep_their_amount_wherever_the_displaced_slice_lies():
    """Chemical-shift displacement moves a singlet's slice; the voxel's signal stays its proton count."""
    pulse = sinc_pulse(5.2, 1200.0)
    seq = make_sequence("press", te1_ms=17.5, te2_ms=17.5, refocusing_pulse=pulse, carrier_ppm=3.0)
    fid = simulate_metabolite_fid(METABOLITES["Cr"], seq, FIELD, 64, DWELL)
    assert fid[0] == pytest.approx(5.0, abs=2e-3)  # both singlets: 3 + 2 protons, real
    for ppm in (1.3, 2.0, 4.0):  # 1-1.7 ppm (120-210 Hz) from the carrier
        fid = simulate_metabolite_fid(METABOLITES["Cr"].__class__("x", "x", (SpinSystem((ppm,), {}, 1.0),), (1, 1)),
                                      seq, FIELD, 64, DWELL)
        assert abs(fid[0]) == pytest.approx(1.0, abs=0.01), ppm


def test_shaped_pulses_reshape_coupled_multiplets():
    """Glu's 3.75 ppm multiplet at TE 35 grows with finite, slice-selective pulses (its partners at 2.0-2.1 ppm are
    refocused in a displaced slice), as vendor-pulse basis sets show; the NAA singlet does not change."""
    kw = dict(te1_ms=17.5, te2_ms=17.5, metabolites=["NAA", "Glu"], cache=False)
    ideal = simulate_basis(**kw)
    shaped = simulate_basis(**kw, refocusing_pulse="sinc_5.2ms_1200hz")
    spec = lambda b, k: np.fft.fftshift(np.fft.fft(b.fids[k] * np.exp(-np.pi * 3 * b.time)))  # noqa: E731
    window = lambda b, lo, hi: (b.ppm > lo) & (b.ppm < hi)  # noqa: E731
    glu = ideal.index("Glu")
    w = window(ideal, 3.7, 3.8)
    assert spec(shaped, glu)[w].real.sum() / spec(ideal, glu)[w].real.sum() > 1.5
    naa = ideal.index("NAA")
    w = window(ideal, 1.95, 2.07)
    assert spec(shaped, naa)[w].real.sum() / spec(ideal, naa)[w].real.sum() == pytest.approx(1.0, abs=0.01)
    assert shaped.protocol["refocusing_pulse"]["name"] == "sinc 5.2 ms 1200 Hz"
    assert "shaped" in shaped.protocol["source"]


@pytest.mark.skipif(not SIEMENS.exists(), reason="../shared/data not present")
def test_shaped_simulation_is_closer_to_a_vendor_pulse_basis():
    """Against Osprey's Siemens PRESS TE 35 basis (vendor pulses): after matching its reference offset and built-in
    linewidth on Cr, the shaped-pulse Glu, Gln and Lac are nearer to it than the ideal-pulse ones."""
    from scipy.optimize import minimize

    n, dwell = 4096, 1 / 4000.0
    vendor = BasisSet.load(SIEMENS).resample(dwell_s=dwell, n_points=n)
    t = np.arange(n) * dwell
    ppm = 4.65 - np.fft.fftshift(np.fft.fftfreq(n, dwell)) / vendor.field_mhz
    band = (ppm > 1.8) & (ppm < 4.2)

    def spec(fid, shift=0.0, lw=0.0):
        return np.fft.fftshift(np.fft.fft(fid * np.exp(2j * np.pi * shift * t - np.pi * (3 + lw) * t)))[band]

    def dist(x, o):
        c = np.vdot(x, o) / np.vdot(x, x)
        return np.linalg.norm(c * x - o) / np.linalg.norm(o)

    field = vendor.field_mhz
    ideal = make_sequence("press", te1_ms=17.5, te2_ms=17.5)
    shaped = make_sequence("press", te1_ms=17.5, te2_ms=17.5, refocusing_pulse=REFOCUSING_PULSES["sinc_4.0ms_1600hz"])
    cr = simulate_metabolite_fid(METABOLITES["Cr"], ideal, field, n, dwell)
    fit = minimize(lambda p: dist(spec(cr, p[0], abs(p[1])), spec(vendor["Cr"])), [0.0, 1.0], method="Nelder-Mead")
    assert fit.fun < 0.05
    shift, lw = fit.x[0], abs(fit.x[1])
    for name in ("Glu", "Gln", "Lac"):
        d_ideal = dist(spec(simulate_metabolite_fid(METABOLITES[name], ideal, field, n, dwell), shift, lw),
                       spec(vendor[name]))
        d_shaped = dist(spec(simulate_metabolite_fid(METABOLITES[name], shaped, field, n, dwell), shift, lw),
                        spec(vendor[name]))
        assert d_shaped < 0.8 * d_ideal, (name, d_ideal, d_shaped)


def test_bad_shaped_protocols_are_named():
    with pytest.raises(ProtocolError, match="does not fit"):
        make_sequence("press", te1_ms=4, te2_ms=16, refocusing_pulse=sinc_pulse(6.9, 900.0))
    with pytest.raises(ProtocolError, match="PRESS and spin echo"):
        make_sequence("steam", te_ms=20, tm_ms=10, refocusing_pulse=sinc_pulse())
    with pytest.raises(ProtocolError, match="unknown refocusing pulse"):
        simulate_basis(metabolites=["Cr"], refocusing_pulse="vendor_x", cache=False)
    with pytest.raises(ProtocolError, match="time-bandwidth"):
        sinc_pulse(1.0, 500.0)
    with pytest.raises(ProtocolError, match="area is zero"):
        RFPulse("zero", (1.0, -1.0), 1.0, 1000.0)


def test_shaped_lines_are_the_same_signal_as_ideal_far_off_a_coupling():
    """An uncoupled spin through the shaped path: one line at its own frequency."""
    seq = make_sequence("spin_echo", te_ms=30, refocusing_pulse=sinc_pulse(), carrier_ppm=3.0)
    freqs, amps = simulate_lines(SpinSystem((2.5,)), seq, FIELD)
    assert len(freqs) == 1 and freqs[0] == pytest.approx((4.65 - 2.5) * FIELD, abs=1e-6)
