import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecheck.build.spectrogram import SpectrogramConfig, Standardizer, config_for, features, log_spectrogram, stft
from edgecheck.errors import EdgecheckError


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([8, 16, 32, 64]), st.integers(1, 40), st.integers(64, 400), st.booleans())
def test_frame_counts_match_librosa(n_fft, hop, n_samples, center):
    cfg = SpectrogramConfig(sampling_rate=25.0, n_fft=n_fft, hop_length=hop, center=center)
    X = np.random.default_rng(0).normal(size=(2, 3, n_samples)).astype(np.float32)
    S = log_spectrogram(X, cfg)
    assert S.shape == (2, 3, cfg.n_freqs(), cfg.n_frames(n_samples))
    assert features(X, cfg).shape == (2, cfg.n_features(3, n_samples))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 70), st.integers(1, 40), st.integers(2, 300), st.booleans(), st.sampled_from(["hann", "hamming"]),
       st.integers(1, 4))
def test_stft_is_librosas_bit_for_bit(n_fft, hop, n_samples, center, window, channels):
    """The features' STFT is computed with numpy (librosa's import JIT-compiles kernels it never uses): it must be
    librosa.stft's, byte for byte, or every model built from it changes. Odd frames, hops longer than a frame,
    windows shorter than a frame (centred), and both of librosa's block paths (frames before and after the
    padded ends) are all drawn."""
    librosa = pytest.importorskip("librosa")
    if not center and n_samples < n_fft:
        n_samples = n_fft
    cfg = SpectrogramConfig(sampling_rate=25.0, n_fft=n_fft, hop_length=hop, center=center, window=window)
    X = np.random.default_rng(n_fft * 1000 + n_samples).normal(size=(3, channels, n_samples)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa warns of a frame longer than a centred window
        want = librosa.stft(X, n_fft=n_fft, hop_length=hop, window=window, center=center, pad_mode="constant")
    got = stft(X, cfg)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    assert got.shape[-1] == cfg.n_frames(n_samples)


def test_stft_is_librosas_on_the_default_dataset():
    """The same on the default grid's own windows (the collar dataset, 6000 windows of 3 axes)."""
    librosa = pytest.importorskip("librosa")
    from edgecheck.build.data import synthetic_collar

    ds = synthetic_collar()
    X = ds.X[:600]
    cfg = config_for(ds.sampling_rate, X.shape[-1])
    want = librosa.stft(np.ascontiguousarray(X, dtype=np.float32), n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                        window=cfg.window, center=cfg.center)
    assert stft(X, cfg).tobytes() == want.tobytes()


def test_matches_numpy_stft():
    """The log magnitude of a pure tone peaks at its frequency bin."""
    cfg = SpectrogramConfig(sampling_rate=25.0, n_fft=64, hop_length=32)
    t = np.arange(256) / 25.0
    X = np.sin(2 * np.pi * 3.125 * t)[None, None, :].astype(np.float32)  # exactly bin 8
    S = log_spectrogram(X, cfg)[0, 0]
    assert np.all(S[:, 2:-2].argmax(axis=0) == 8)


def test_defaults_shrink_for_short_windows():
    assert config_for(25.0, 256).n_fft == 64
    assert config_for(10.0, 100).n_fft == 32
    with pytest.raises(EdgecheckError, match="n_fft"):
        SpectrogramConfig(sampling_rate=1.0, n_fft=1)


def test_standardizer_uses_training_statistics():
    rng = np.random.default_rng(0)
    F = rng.normal(5, 2, size=(500, 4)).astype(np.float32)
    F[:, 3] = 1.0  # a constant feature must not divide by zero
    s = Standardizer.fit(F)
    Z = s.apply(F)
    assert np.allclose(Z[:, :3].mean(axis=0), 0, atol=1e-5) and np.allclose(Z[:, :3].std(axis=0), 1, atol=1e-3)
    assert np.all(np.isfinite(Z))
