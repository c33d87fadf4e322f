import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecheck.build.spectrogram import SpectrogramConfig, Standardizer, config_for, features, log_spectrogram
from edgecheck.errors import EdgecheckError


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([8, 16, 32, 64]), st.integers(1, 40), st.integers(64, 400), st.booleans())
def test_frame_counts_match_librosa(n_fft, hop, n_samples, center):
    cfg = SpectrogramConfig(sampling_rate=25.0, n_fft=n_fft, hop_length=hop, center=center)
    X = np.random.default_rng(0).normal(size=(2, 3, n_samples)).astype(np.float32)
    S = log_spectrogram(X, cfg)
    assert S.shape == (2, 3, cfg.n_freqs(), cfg.n_frames(n_samples))
    assert features(X, cfg).shape == (2, cfg.n_features(3, n_samples))


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
