"""Known physics of the density-matrix simulator."""
import numpy as np
import pytest

from mrs_tf import ProtocolError, simulate_basis
from mrs_tf.metabolites import METABOLITES, Metabolite, SpinSystem
from mrs_tf.spin_sim import make_sequence, simulate_lines, simulate_metabolite_fid

from conftest import peak_ppm

FIELD, DWELL = 123.2, 1 / 4000


def _fid(systems, seq, n=8192, field=FIELD):
    return simulate_metabolite_fid(Metabolite("X", "test", tuple(systems), (1, 1)), seq, field, n, DWELL)


def _lines_near(freqs, amps, centre_hz, half_width_hz):
    sel = np.abs(freqs - centre_hz) < half_width_hz
    order = np.argsort(freqs[sel])
    return freqs[sel][order], amps[sel][order]


def test_singlet_position_and_area():
    fid = _fid([SpinSystem((3.0,), {}, 3.0)], make_sequence("fid"))
    assert fid[0] == pytest.approx(3.0)  # area of a spectrum = N * fid[0]: three protons
    ppm, _ = peak_ppm(fid, DWELL, FIELD)
    assert ppm == pytest.approx(3.0, abs=0.002)
    # integral of the broadened spectrum over the peak (Gaussian: compact) = 3 protons
    n = len(fid)
    t = np.arange(n) * DWELL
    broadened = fid * np.exp(-(np.pi * 3.0 * t) ** 2 / (4 * np.log(2)))
    broadened[0] *= 0.5  # first-point correction: the discrete absorption area is then exactly N * fid[0] / 2
    spec = np.fft.fftshift(np.fft.fft(broadened))
    axis = 4.65 - np.fft.fftshift(np.fft.fftfreq(n, DWELL)) / FIELD
    sel = np.abs(axis - 3.0) < 0.2
    assert 2 * spec.real[sel].sum() / n == pytest.approx(3.0, rel=1e-4)


def test_ppm_decreases_with_index_and_centre_is_water(basis):
    assert basis.ppm[basis.n_points // 2] == pytest.approx(4.65)
    assert np.all(np.diff(basis.ppm) < 0)
    ppm, _ = peak_ppm(basis["NAA"], basis.dwell_s, basis.field_mhz, window=(1.8, 2.2))
    assert ppm == pytest.approx(2.008, abs=0.003)
    ppm, _ = peak_ppm(basis["Cr"], basis.dwell_s, basis.field_mhz, window=(2.9, 3.1))
    assert ppm == pytest.approx(3.027, abs=0.003)


def test_ax_doublet_split_by_j():
    system = SpinSystem((1.0, 3.0), {(0, 1): 7.0})
    freqs, amps = simulate_lines(system, make_sequence("fid"), FIELD)
    f, a = _lines_near(freqs, amps, (4.65 - 1.0) * FIELD, 20)
    assert len(f) == 2
    assert f[1] - f[0] == pytest.approx(7.0, abs=0.05)  # weak coupling: split by J
    d = np.hypot(246.4, 7.0)
    roof = (1 + 7.0 / d) / (1 - 7.0 / d)  # nearly first order: the roof effect is only 6 %
    assert abs(a[0]) / abs(a[1]) == pytest.approx(roof, rel=0.005)  # the inner line (towards 3 ppm) is taller


def test_ab_roof_effect_strong_coupling():
    j, dnu = 10.0, 10.0  # J / delta-nu = 1: strongly coupled AB
    system = SpinSystem((2.0, 2.0 + dnu / FIELD), {(0, 1): j})
    freqs, amps = simulate_lines(system, make_sequence("fid"), FIELD)
    centre = (4.65 - 2.0 - dnu / FIELD / 2) * FIELD
    f, a = _lines_near(freqs, amps, centre, 30)
    assert len(f) == 4
    d = np.hypot(dnu, j)
    np.testing.assert_allclose(f - centre, [-(d + j) / 2, -(d - j) / 2, (d - j) / 2, (d + j) / 2], atol=0.05)
    sin2theta = j / d
    ratio = (1 + sin2theta) / (1 - sin2theta)  # inner / outer intensity = 5.83
    assert abs(a[1]) / abs(a[0]) == pytest.approx(ratio, rel=0.02)
    assert abs(a[2]) / abs(a[3]) == pytest.approx(ratio, rel=0.02)


def _lactate_methyl_echo(te_ms):
    """In-phase amplitude of lactate's CH3 doublet at the echo top: the sum of its complex line amplitudes (the
    antiphase part, 2 Iy Sz, cancels in the sum), per proton-normalised units (3 = three protons, fully upright)."""
    from mrs_tf.spin_sim import _reference_response

    seq = make_sequence("spin_echo", te_ms=te_ms) if te_ms else make_sequence("fid")
    system = METABOLITES["Lac"].systems[0]
    freqs, amps = simulate_lines(system, seq, FIELD)
    near = np.abs(freqs - (4.65 - 1.3142) * FIELD) < 20
    return complex(amps[near].sum() / _reference_response(seq, FIELD, 4.65))


def test_lactate_j_modulation_inverts_at_te_1_over_j():
    j = 6.933
    assert _lactate_methyl_echo(0).real == pytest.approx(3.0, rel=1e-3)
    assert _lactate_methyl_echo(1000 / j).real == pytest.approx(-3.0, rel=0.01)  # TE = 144 ms: inverted
    assert _lactate_methyl_echo(2000 / j).real == pytest.approx(3.0, rel=0.01)   # TE = 288 ms: upright again
    assert abs(_lactate_methyl_echo(500 / j)) < 0.05                              # TE = 72 ms: antiphase only
    for te in (20.0, 100.0):  # weak coupling: 3 cos(pi J TE)
        assert _lactate_methyl_echo(te).real == pytest.approx(3 * np.cos(np.pi * j * te / 1000), abs=0.05)


def test_press_spin_echo_steam_slaser_agree_for_singlets():
    systems = [SpinSystem((3.027,), {}, 3.0), SpinSystem((3.913,), {}, 2.0)]
    ref = _fid(systems, make_sequence("spin_echo", te_ms=30))
    for seq in (make_sequence("press", te1_ms=11, te2_ms=19), make_sequence("steam", te_ms=30, tm_ms=10),
                make_sequence("slaser", te_ms=30, n_refocus=4)):
        np.testing.assert_allclose(_fid(systems, seq), ref, atol=1e-10)


def test_pulse_acquire_fid0_is_proton_count():
    seq = make_sequence("fid")
    for name in ("Glu", "GABA", "Ins", "Glc", "NAA", "GPC"):
        fid = simulate_metabolite_fid(METABOLITES[name], seq, FIELD, 64, DWELL)
        assert fid[0] == pytest.approx(METABOLITES[name].n_protons, abs=1e-6), name


def test_coupled_spectrum_changes_with_te_and_field():
    glu30 = simulate_basis(metabolites=["Glu"], cache=False).fids[0]
    glu144 = simulate_basis(te1_ms=72, te2_ms=72, metabolites=["Glu"], cache=False).fids[0]
    assert np.abs(glu30 - glu144).max() > 0.5
    naa7 = simulate_basis(field_mhz=297.2, metabolites=["NAA"], bandwidth_hz=8000, cache=False)
    ppm, _ = peak_ppm(naa7.fids[0], naa7.dwell_s, 297.2, window=(1.8, 2.2))
    assert ppm == pytest.approx(2.008, abs=0.003)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sequence="press", te_ms=-30), "non-negative"),
    (dict(sequence="press", te_ms=35, te1_ms=11, te2_ms=19), r"TE1 \+ TE2"),
    (dict(sequence="spin_echo", te_ms=None), "te_ms is required"),
    (dict(sequence="steam", te_ms=20), "tm_ms"),
    (dict(sequence="slaser", te_ms=30, n_refocus=3), "even number"),
    (dict(sequence="mega-press", te_ms=68), "unknown sequence"),
])
def test_bad_protocols(kwargs, message):
    with pytest.raises(ProtocolError, match=message):
        make_sequence(**kwargs)


def test_simulate_basis_rejects_bad_protocols():
    with pytest.raises(ProtocolError, match="field_mhz"):
        simulate_basis(field_mhz=-3, metabolites=["Cr"])
    with pytest.raises(ProtocolError, match="TE1 \\+ TE2"):
        simulate_basis(te_ms=30, te1_ms=10, te2_ms=10, metabolites=["Cr"])
