"""mrs_brain_sim: in vivo-like human-brain 1H MR spectra simulated by mrs-tf, with every ground-truth parameter.

No downloads: every example is synthesised by :func:`mrs_tf.synthesize` from mrs-tf's own density-matrix basis
(Govindaraju 2000 spin tables) and parametric MM model. Example ``k`` of a split is generated from the seed
``SeedSequence([config.seed, split_id, k // BLOCK])``, so the same mrs-tf version, config and seed give
byte-identical records.

Every example carries the Cramér–Rao lower bound of each concentration (``crlb``) and of the sums NAA+NAAG, Cr+PCr,
GPC+PCh, Glu+Gln (``crlb_combined``), computed by :func:`mrs_tf.crlb.from_truth` at the example's true parameters for
the QUEST signal model fitted to the whole FID (``QuestOptions(background="none")``: lineshape, shifts and phases
free, the smooth baseline known): the physical limit that evaluations set estimators against.

Large builds run in parallel on Apache Beam (``pip install "mrs-tf[beam]"``): pass a runner, e.g.
``tfds build tfds_mrs/mrs_brain_sim --config press3t_te30_snr10-100_large --beam_pipeline_options=runner=DirectRunner``
or ``mrs_tf.data.build(config, data_dir, beam_runner="DirectRunner")``; each block of :data:`BLOCK` spectra is one
Beam element, so the records are the same as a local build's.
"""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

import mrs_tf
from mrs_tf.basis import simulate_basis
from mrs_tf.crlb import COMBINATIONS, from_truth
from mrs_tf.preprocess import DEFAULT_PPM_RANGE, crop_slice, cropped_spectrum
from mrs_tf.quest import QuestOptions
from mrs_tf.synth import SynthesisConfig, synthesize

BLOCK = 256  # spectra synthesised together; part of the seed layout, so changing it changes the data
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}
NUISANCE_KEYS = ("lw_lorentz_hz", "lw_gauss_hz", "shift_hz", "phase0_deg", "phase1_deg_per_ppm", "snr", "noise_sd",
                 "naa_height") + tuple(f"baseline_{p}_{k}" for k in range(4) for p in ("amp", "ppm", "fwhm_ppm"))


@contextlib.contextmanager
def _deterministic_serialization():
    """TFDS writes each example as ``tf.train.Example.SerializeToString()``; its ``features`` is a protobuf map, which
    protobuf's upb runtime serialises in its hash-table order, and that order differs between processes (two builds of
    one config in two processes gave different shards, protobuf-equal records). Inside this block TFDS's serializer
    asks for protobuf's deterministic serialisation (map entries in key order), so the same config and seed give the
    same bytes in any process."""
    from tensorflow_datasets.core import example_serializer

    cls = example_serializer.ExampleSerializer
    original = cls.serialize_example

    def serialize_example(self, example):
        return self.get_tf_example(example).SerializeToString(deterministic=True)

    cls.serialize_example = serialize_example
    try:
        yield
    finally:
        cls.serialize_example = original


@dataclasses.dataclass
class MrsBrainSimConfig(tfds.core.BuilderConfig):
    """Protocol, SNR band and split sizes of one variant."""

    sequence: str = "press"
    field_mhz: float = 123.2
    te1_ms: float = 11.0
    te2_ms: float = 19.0
    n_points: int = 2048
    bandwidth_hz: float = 4000.0
    snr: tuple = (10.0, 100.0)
    train: int = 20000
    validation: int = 2000
    test: int = 2000
    seed: int = 20161  # fixed generation seed of the published variants
    ppm_range: tuple = DEFAULT_PPM_RANGE


def _press3t(name, snr, train, val, test, description):
    return MrsBrainSimConfig(name=name, description=description, snr=snr, train=train, validation=val, test=test)


BUILDER_CONFIGS = [
    _press3t("press3t_te30_snr10-100", (10.0, 100.0), 20000, 2000, 2000,
             "3 T PRESS TE 30 ms (11 + 19), 123.2 MHz, 4000 Hz, 2048 points, SNR 10-100: the default protocol; "
             "sized for CPU users (about 1 minute to build here)."),
    _press3t("press3t_te30_snr5-30", (5.0, 30.0), 10000, 1000, 1000, "Default protocol at low SNR (5-30)."),
    _press3t("press3t_te30_snr100-200", (100.0, 200.0), 10000, 1000, 1000, "Default protocol at high SNR (100-200)."),
    MrsBrainSimConfig(name="press7t_te30_snr10-100", field_mhz=297.2, bandwidth_hz=6000.0,
                      description="7 T PRESS TE 30 ms (11 + 19), 297.2 MHz, 6000 Hz, 2048 points, SNR 10-100.",
                      train=10000, validation=1000, test=1000),
    _press3t("press3t_te30_snr10-100_large", (10.0, 100.0), 500000, 20000, 20000,
             "Default protocol, SNR 10-100, large (500k training spectra, ~8 GB) for GPU users."),
    _press3t("tiny", (10.0, 100.0), 64, 16, 16, "Default protocol, 96 spectra: for tests and CI."),
]


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for mrs_brain_sim."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "First release: mrs-tf 0.1 physics core (20 metabolites + MM, PRESS 3 T/7 T).",
                     "1.1.0": "Adds crlb and crlb_combined: the CRLB of every concentration at the true parameters."}
    BUILDER_CONFIGS = BUILDER_CONFIGS
    DEFAULT_CONFIG_NAME = "press3t_te30_snr10-100"
    name = "mrs_brain_sim"

    def _basis(self):
        c = self.builder_config
        return simulate_basis(sequence=c.sequence, field_mhz=c.field_mhz, te1_ms=c.te1_ms, te2_ms=c.te2_ms,
                              n_points=c.n_points, bandwidth_hz=c.bandwidth_hz)

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        names = list(mrs_tf.ALL_NAMES)
        sl = crop_slice(c.n_points, 1 / c.bandwidth_hz, c.field_mhz, c.ppm_range)
        n_crop = sl.stop - sl.start
        metadata = tfds.core.MetadataDict(
            metabolite_names=names,
            protocol={"sequence": c.sequence, "field_mhz": c.field_mhz, "te1_ms": c.te1_ms, "te2_ms": c.te2_ms,
                      "te_ms": c.te1_ms + c.te2_ms, "n_points": c.n_points, "bandwidth_hz": c.bandwidth_hz,
                      "dwell_s": 1 / c.bandwidth_hz, "ref_ppm": 4.65},
            spectrum_ppm_range=list(c.ppm_range),
            spectrum_slice=[sl.start, sl.stop],
            snr_range=list(c.snr),
            generation_seed=c.seed,
            mrs_tf_version=mrs_tf.__version__,
            basis_provenance="mrs-tf density-matrix simulation, ideal pulses; spin tables Govindaraju et al. 2000 "
                             "(+ Govind 2015); parametric MM (mrs_tf.macromolecules)",
            synthesis=dataclasses.asdict(SynthesisConfig()),
            nuisance_keys=list(NUISANCE_KEYS),
            combination_names=list(COMBINATIONS),
            crlb_model="mrs_tf.crlb.from_truth, QuestOptions(background='none'): whole FID, baseline known",
        )
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "fid": tfds.features.Tensor(shape=(c.n_points, 2), dtype=np.float32,
                                            doc="time-domain FID, real and imaginary (NIfTI-MRS sign convention)"),
                "spectrum": tfds.features.Tensor(shape=(n_crop, 2), dtype=np.float32,
                                                 doc="fftshift(fft(fid)) within spectrum_ppm_range, real/imag"),
                "concentrations": tfds.features.Tensor(shape=(len(names),), dtype=np.float32,
                                                       doc="ground truth, mM (MM in model units), metabolite_names"),
                "crlb": tfds.features.Tensor(shape=(len(names),), dtype=np.float32,
                                             doc="Cramer-Rao lower bound of each concentration (same units/order)"),
                "crlb_combined": tfds.features.Tensor(shape=(len(COMBINATIONS),), dtype=np.float32,
                                                      doc="CRLB of NAA+NAAG, Cr+PCr, GPC+PCh, Glu+Gln"),
                "nuisance": {k: tfds.features.Scalar(dtype=np.float32) for k in NUISANCE_KEYS},
                "index": tfds.features.Scalar(dtype=np.int64, doc="example index within its split"),
            }),
            supervised_keys=("spectrum", "concentrations"),
            homepage="https://github.com/mrs-tf/mrs-tf",
            metadata=metadata,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        c = self.builder_config
        return {"train": self._generate_examples("train", c.train),
                "validation": self._generate_examples("validation", c.validation),
                "test": self._generate_examples("test", c.test)}

    def _download_and_prepare(self, dl_manager, download_config=None):
        # a Beam runner or pipeline options in the download config: generate through Beam (see the module docstring)
        self._use_beam = bool(download_config and (download_config.beam_runner or download_config.beam_options))
        with _deterministic_serialization():
            return super()._download_and_prepare(dl_manager, download_config)

    def _log_download_bytes(self) -> None:
        # TFDS's own line ("Downloading and preparing dataset Unknown size (download: Unknown size, ...)") says
        # nothing true here: nothing is downloaded
        c = self.builder_config
        print(f"mrs_brain_sim/{c.name}: synthesising {c.train:,} train, {c.validation:,} validation and {c.test:,} "
              f"test spectra with mrs-tf (nothing is downloaded) into {self.data_path}")

    def _log_download_done(self) -> None:
        print(f"mrs_brain_sim/{self.builder_config.name}: ready in {self.data_path}")

    def _generate_examples(self, split: str, n: int):
        blocks = range((n + BLOCK - 1) // BLOCK)
        if getattr(self, "_use_beam", False):
            beam = tfds.core.lazy_imports.apache_beam
            return (f"blocks of {split}" >> beam.Create(list(blocks))
                    | f"synthesise {split}" >> beam.FlatMap(self._block_examples, split, n))
        return (example for block in blocks for example in self._block_examples(block, split, n))

    def _block_examples(self, block: int, split: str, n: int):
        """The examples of one block of :data:`BLOCK` spectra (seeded by config seed, split and block)."""
        c = self.builder_config
        basis = self._basis()
        names = basis.names
        size = min(BLOCK, n - block * BLOCK)
        seed = np.random.SeedSequence([c.seed, _SPLIT_IDS[split], block])
        fids, truth = synthesize(basis, n=size, snr=c.snr, seed=seed, n_jobs=1)
        spectra = cropped_spectrum(fids, basis.dwell_s, basis.field_mhz, c.ppm_range)
        conc = np.stack([truth[m] for m in names], axis=1).astype(np.float32)
        bounds = from_truth(basis, truth, QuestOptions(background="none"))
        crlb = np.stack([bounds[m] for m in names], axis=1).astype(np.float32)
        crlb_combined = np.stack([bounds[m] for m in COMBINATIONS], axis=1).astype(np.float32)
        for i in range(size):
            index = block * BLOCK + i
            yield f"{split}-{index:08d}", {
                "fid": np.stack([fids[i].real, fids[i].imag], axis=-1).astype(np.float32),
                "spectrum": spectra[i],
                "concentrations": conc[i],
                "crlb": crlb[i],
                "crlb_combined": crlb_combined[i],
                "nuisance": {k: np.float32(truth[k][i]) for k in NUISANCE_KEYS},
                "index": index,
            }
