"""Notes -> 16-bit mono WAV: a small additive synthesizer with numpy only (no soundfont, no system
library), or FluidSynth with a General-MIDI soundfont where it is installed.

Each note of the additive synthesizer is a few harmonics with decaying amplitudes under an
attack-decay-sustain-release envelope, a plucked/bowed sound that makes melodies easy to follow.
FluidSynth plays the MIDI file with real instrument samples: pretty_midi's TimGM6mb.sf2 through
pyfluidsynth (`pip install "genlab[fluidsynth]"` and the libfluidsynth system library). The
provenance goes into the WAV file's LIST/INFO chunk (ICMT comment), which audio players and tools show.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from genlab.errors import GenlabError
from genlab.io import atomic_write_bytes
from genlab.music.notes import Note

SAMPLE_RATE = 22050
RENDERERS = ("auto", "additive", "fluidsynth")
HARMONICS = (1.0, 0.5, 0.3, 0.15, 0.08)  # relative amplitudes of partials 1..5
ATTACK, DECAY, SUSTAIN, RELEASE = 0.01, 0.08, 0.6, 0.12  # seconds, seconds, level, seconds


def render(notes: list[Note], qpm: float = 120.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mix the notes into float32 samples in [-1, 1]; the audio lasts until the last note's release ends."""
    seconds_per_quarter = 60.0 / qpm
    end = max((float(n.start + n.duration) for n in notes), default=0.0) * seconds_per_quarter
    out = np.zeros(int(round((end + RELEASE) * sample_rate)) + 1, dtype=np.float64)
    for n in notes:
        start = int(round(float(n.start) * seconds_per_quarter * sample_rate))
        held = max(float(n.duration) * seconds_per_quarter, ATTACK + DECAY)
        length = int((held + RELEASE) * sample_rate)
        t = np.arange(length) / sample_rate
        freq = 440.0 * 2.0 ** ((n.pitch - 69) / 12)
        wave = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(HARMONICS)
                   if freq * (k + 1) < sample_rate / 2)
        seg = out[start : start + length]
        seg += (wave * _envelope(t, held) * (n.velocity / 127))[: len(seg)]
    peak = np.abs(out).max()
    if peak > 0:
        out *= 0.8 / peak
    return out.astype(np.float32)


def _envelope(t: np.ndarray, held: float) -> np.ndarray:
    """Attack to 1, decay to the sustain level, hold, then release to 0 after `held` seconds."""
    env = np.where(t < ATTACK, t / ATTACK,
                   np.where(t < ATTACK + DECAY, 1 - (1 - SUSTAIN) * (t - ATTACK) / DECAY, SUSTAIN))
    release = np.clip(1 - (t - held) / RELEASE, 0, 1)
    return env * np.where(t < held, 1.0, release)


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE, provenance: dict | None = None) -> bytes:
    """16-bit PCM mono WAV, with the provenance record (sealed with the PCM's hash) as a LIST/INFO comment."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    chunks = _chunk(b"fmt ", fmt)
    if provenance is not None:
        from genlab.safety.provenance import comment, pcm_hash, seal

        text = comment(seal(provenance, "audio/wav", pcm_hash(pcm))).encode("ascii", "replace") + b"\0"
        chunks += _chunk(b"LIST", b"INFO" + _chunk(b"ICMT", text))
    chunks += _chunk(b"data", pcm)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _chunk(tag: bytes, data: bytes) -> bytes:
    pad = b"\0" if len(data) % 2 else b""
    return tag + struct.pack("<I", len(data)) + data + pad


def fluidsynth_available() -> bool:
    """pretty_midi and pyfluidsynth are installed and libfluidsynth loads."""
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth: loading it loads libfluidsynth, or fails)
        import pretty_midi  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def pick_renderer(name: str) -> str:
    """auto -> fluidsynth where it is installed, else additive; fluidsynth asked for but missing is an error."""
    if name not in RENDERERS:
        raise GenlabError(f"unknown --renderer {name!r}; choose from {', '.join(RENDERERS)}")
    if name == "auto":
        return "fluidsynth" if fluidsynth_available() else "additive"
    if name == "fluidsynth" and not fluidsynth_available():
        raise GenlabError("--renderer fluidsynth needs pretty_midi and pyfluidsynth (pip install 'genlab[fluidsynth]') "
                          "and the libfluidsynth library (apt-get install libfluidsynth3); or use --renderer additive")
    return name


def render_fluidsynth(notes: list[Note], qpm: float = 120.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The notes' MIDI file played by FluidSynth with pretty_midi's General-MIDI soundfont (piano)."""
    import io

    import pretty_midi

    from genlab.music.convert import notes_to_midi

    audio = pretty_midi.PrettyMIDI(io.BytesIO(notes_to_midi(notes, qpm))).fluidsynth(fs=sample_rate)
    return (audio * 0.8).astype(np.float32)  # pretty_midi scales the peak to 1; leave the additive's headroom


def write_wav(path: Path, notes: list[Note], qpm: float = 120.0, provenance: dict | None = None,
              sample_rate: int = SAMPLE_RATE, renderer: str = "additive") -> None:
    """Render the notes with `renderer` (additive, fluidsynth or auto) and write them, atomically."""
    play = render_fluidsynth if pick_renderer(renderer) == "fluidsynth" else render
    atomic_write_bytes(path, wav_bytes(play(notes, qpm, sample_rate), sample_rate, provenance))
