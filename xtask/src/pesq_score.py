# PESQ of a played-out WAV against the reference speech (written to
# target/ by `cargo xtask bench audio`; run in its venv).
# usage: pesq_score.py REF.wav DEG.wav nb|wb
# prints: "pesq=<score> offset_ms=<lag> deg_s=<seconds> corr=<peak>"
import sys
import wave

import numpy as np
from pesq import pesq


def read(path):
    with wave.open(path, "rb") as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise SystemExit(f"{path}: {8 * width}-bit samples, want 16")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return rate, x


def resample(x, src, dst):
    """Band-limited rational resampling by FFT (whole signal; fine offline)."""
    if src == dst:
        return x
    n = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x)
    keep = min(len(spec), n // 2 + 1)
    out = np.zeros(n // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    return np.fft.irfft(out, n) * (n / len(x))


def main():
    ref_path, deg_path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    fs_r, ref = read(ref_path)
    fs_d, deg = read(deg_path)
    deg = resample(deg, fs_d, fs_r)
    if len(deg) < fs_r:
        raise SystemExit(f"{deg_path}: only {len(deg) / fs_r:.2f} s of audio")
    # Where the reference starts in the played-out file: the peak of the
    # cross-correlation (by FFT), searched over non-negative lags.
    n = 1 << int(np.ceil(np.log2(len(ref) + len(deg))))
    xc = np.fft.irfft(np.fft.rfft(deg, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(xc[: len(deg)]))
    peak = xc[lag] / (np.linalg.norm(ref) * np.linalg.norm(deg) + 1e-9)
    aligned = deg[lag : lag + len(ref)]
    if len(aligned) < len(ref):
        aligned = np.concatenate([aligned, np.zeros(len(ref) - len(aligned))])
    score = pesq(fs_r, ref.astype(np.float32), aligned.astype(np.float32), mode)
    print(
        f"pesq={score:.3f} offset_ms={1000.0 * lag / fs_r:.1f} "
        f"deg_s={len(deg) / fs_r:.2f} corr={peak:.3f}"
    )


main()
