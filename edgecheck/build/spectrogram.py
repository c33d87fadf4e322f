"""Joint time-frequency features: log-magnitude STFT per channel, flattened.

The config object travels with every artifact, so a model's input can be
recomputed exactly. The STFT is librosa's, computed with numpy and scipy's window (``stft``);
only the build stage computes features, the measuring process reads them from the artifacts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgecheck.errors import EdgecheckError


@dataclass(frozen=True)
class SpectrogramConfig:
    sampling_rate: float  # Hz, from the dataset
    n_fft: int = 64
    hop_length: int = 32
    window: str = "hann"
    center: bool = True
    log_floor: float = 1e-6  # features are log(|STFT| + log_floor)

    def __post_init__(self) -> None:
        if self.n_fft < 2:
            raise EdgecheckError(f"spectrogram: n_fft must be >= 2, got {self.n_fft}")
        if self.hop_length < 1:
            raise EdgecheckError(f"spectrogram: hop_length must be >= 1, got {self.hop_length}")

    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, n_samples: int) -> int:
        """Frames librosa's stft produces for a window of ``n_samples``."""
        if self.center:  # n_fft // 2 zeros each side: one frame fewer than n_samples // hop for an odd n_fft
            return 1 + (n_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length
        if n_samples < self.n_fft:
            raise EdgecheckError(f"spectrogram: window of {n_samples} samples is shorter than n_fft={self.n_fft}")
        return 1 + (n_samples - self.n_fft) // self.hop_length

    def n_features(self, n_channels: int, n_samples: int) -> int:
        return n_channels * self.n_freqs() * self.n_frames(n_samples)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SpectrogramConfig:
        return cls(**d)


def config_for(sampling_rate: float, n_samples: int, n_fft: int | None = None,
               hop: int | None = None) -> SpectrogramConfig:
    """Default STFT settings: 64-point frames with 50 % overlap, shrunk for short windows."""
    if n_fft is None:
        n_fft = 64
        while n_fft > 8 and n_fft > n_samples // 2:
            n_fft //= 2
    elif n_fft > n_samples:
        raise EdgecheckError(f"--n-fft: a frame of {n_fft} samples is longer than the dataset's windows "
                             f"({n_samples} samples)")
    if hop is None:
        hop = max(1, n_fft // 2)
    elif hop > n_fft:
        raise EdgecheckError(f"--hop: a hop of {hop} samples skips samples between frames of {n_fft}; use at "
                             f"most {n_fft}")
    return SpectrogramConfig(sampling_rate=float(sampling_rate), n_fft=int(n_fft), hop_length=int(hop))


def stft(X: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """librosa.stft's result, bit for bit, computed with numpy's rfft: [..., samples] -> [..., freqs, frames]
    complex64. librosa's own import JIT-compiles 20 numba kernels for resampling that the STFT never calls
    (12 s of one core on a fresh install, the slowest step of a first build's features), so the STFT librosa
    defines is computed here: its window (scipy's, periodic), its centring (``n_fft // 2`` zeros each side, its
    ``pad_mode="constant"``), frames every ``hop_length`` samples, the float64 product of window and float32 frames,
    rfft, complex64. tests/test_spectrogram.py checks the bytes against librosa.stft (the build extra keeps
    librosa as the reference)."""
    try:
        from scipy.signal import get_window
    except ImportError as e:
        raise EdgecheckError("computing spectrograms needs scipy (pip install 'edgecheck[build]')") from e

    X = np.ascontiguousarray(X, dtype=np.float32)
    if cfg.center:
        X = np.pad(X, [(0, 0)] * (X.ndim - 1) + [(cfg.n_fft // 2, cfg.n_fft // 2)], mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(X, cfg.n_fft, axis=-1)[..., ::cfg.hop_length, :]
    window = get_window(cfg.window, cfg.n_fft, fftbins=True)
    return np.swapaxes(np.fft.rfft(frames * window, axis=-1), -1, -2).astype(np.complex64)


def log_spectrogram(X: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """[windows, channels, samples] -> [windows, channels, freqs, frames] float32."""
    if X.shape[-1] < 2:
        raise EdgecheckError(f"spectrogram: windows of {X.shape[-1]} samples are too short")
    if not cfg.center and X.shape[-1] < cfg.n_fft:
        raise EdgecheckError(f"spectrogram: windows of {X.shape[-1]} samples are shorter than a frame of "
                             f"{cfg.n_fft} without centring")
    S = stft(X, cfg)
    return np.log(np.abs(S) + cfg.log_floor).astype(np.float32)


def features(X: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """Flattened log spectrograms, one row per window: the network's input."""
    S = log_spectrogram(X, cfg)
    return S.reshape(S.shape[0], -1)


@dataclass
class Standardizer:
    """Per-feature mean and std from the training split; kept with the model."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, F: np.ndarray) -> Standardizer:
        std = F.std(axis=0)
        return cls(F.mean(axis=0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def apply(self, F: np.ndarray) -> np.ndarray:
        return ((F - self.mean) / self.std).astype(np.float32)
