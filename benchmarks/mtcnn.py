"""MTCNN detection throughput, one image at a time vs batched, and worker processes.

Input: real photos (MTCNN finds no face in synthetic ones): ``skimage.data.astronaut`` rescaled,
flipped, shifted and brightness-jittered on a 640x490 canvas (the CK+ frame size), so every
image has the same shape, as the frames of a CK+ / Oulu sequence do (``detect_batch`` batches
images of one shape).

Timed interleaved, repeat by repeat (rotating order), with one detector:

* ``one at a time (MTCNN.detect_faces)``: the library, one image per call;
* ``batched (16, MTCNN.detect_faces on a list)``: the library, 16 images per call;
* ``one at a time (detect_batch of 1)`` and ``batched (16, detect_batch)``: what data preparation
  runs (``data_prep.mtcnn_align.detect_batch``: MTCNN's stages on a float32 tensor made once).

Then ``align_files`` end to end (read, detect, align, write PNG + CSV rows) with ``workers=1``
and ``workers=2`` processes (these include the workers' start-up: TF import + MTCNN load).

    python -m benchmarks.mtcnn
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit, quick_mode, row, tiny_mode

FRAME_SHAPE = (490, 640)  # CK+ frames are 640x490


def make_photos(n: int, seed: int = 0):
    """``n`` 490x640 RGB frames, each holding one rescaled / flipped / shifted astronaut."""
    import cv2
    import numpy as np
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    base = skdata.astronaut()
    h, w = FRAME_SHAPE
    frames = []
    for i in range(n):
        scale = rng.uniform(0.6, 0.9)
        face = cv2.resize(base, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if i % 2:
            face = face[:, ::-1]
        canvas = np.full((h, w, 3), int(rng.integers(60, 200)), np.uint8)
        fh, fw = face.shape[:2]
        y0, x0 = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
        canvas[y0 : y0 + fh, x0 : x0 + fw] = face
        gain = rng.uniform(0.8, 1.2)
        frames.append(np.clip(canvas.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return frames


def bench() -> list[dict]:
    import cv2

    from data_prep.mtcnn_align import AlignConfig, align_files, detect_batch, load_detector

    quick, tiny = quick_mode(), tiny_mode()
    n = 4 if tiny else 32
    repeats = 1 if tiny else 2 if quick else 3
    batch = 4 if tiny else 16
    photos = make_photos(n)
    cfg = AlignConfig(batch_size=batch)
    detector = load_detector()
    detect_batch(detector, photos[:batch], cfg)  # warm-up
    detector.detect_faces(photos[:batch])
    for im in photos[:2]:
        detector.detect_faces(im)
        detect_batch(detector, [im], cfg)
    found = {}

    def timed(key, fn):
        def run():
            t0 = time.perf_counter()
            faces = fn()
            found[key] = sum(bool(f) for f in faces)
            return time.perf_counter() - t0

        return run

    kw = dict(
        threshold_pnet=cfg.detect_thresholds[0],
        threshold_rnet=cfg.detect_thresholds[1],
        threshold_onet=cfg.detect_thresholds[2],
    )
    single = "one at a time (MTCNN.detect_faces)"
    lib_batch = f"batched ({batch}, MTCNN.detect_faces on a list)"
    ours_single = "one at a time (detect_batch of 1)"
    ours_batch = f"batched ({batch}, detect_batch)"
    cases = {
        single: timed(single, lambda: [detector.detect_faces(im, **kw) for im in photos]),
        lib_batch: timed(
            lib_batch,
            lambda: [f for i in range(0, n, batch) for f in detector.detect_faces(photos[i : i + batch], **kw)],
        ),
        ours_single: timed(ours_single, lambda: [f for im in photos for f in detect_batch(detector, [im], cfg)]),
        ours_batch: timed(
            ours_batch,
            lambda: [f for i in range(0, n, batch) for f in detect_batch(detector, photos[i : i + batch], cfg)],
        ),
    }
    seconds = {k: [] for k in cases}
    names = list(cases)
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            seconds[name].append(cases[name]())
    section = f"MTCNN detection ({n} real 640x490 photos, 1 face each)"
    rows = [
        row(
            section,
            name,
            "throughput",
            "images/s",
            [n / t for t in seconds[name]],
            note=f"faces found {found[name]}/{n}",
        )
        for name in names
    ]
    ratio = lambda a, b: [x / y for x, y in zip(seconds[a], seconds[b])]  # noqa: E731
    rows.append(
        row(
            section,
            f"{ours_batch} / {single}",
            "speed-up",
            "ratio",
            ratio(single, ours_batch),
            target=">= 2",
            note="what data_prep does vs a plain per-image loop",
        )
    )
    rows.append(
        row(
            section,
            f"{lib_batch} / {single}",
            "speed-up",
            "ratio",
            ratio(single, lib_batch),
            note="batching alone, mtcnn's own code",
        )
    )
    rows.append(
        row(
            section,
            f"{ours_batch} / {ours_single}",
            "speed-up",
            "ratio",
            ratio(ours_single, ours_batch),
            note="batching alone, data_prep's code",
        )
    )

    # align_files end to end, 1 vs 2 worker processes
    src = Path(tempfile.mkdtemp(prefix="bench_mtcnn_src_"))
    items = []
    for i, im in enumerate(photos):
        p = src / f"frame_{i:03d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
        items.append((str(p), f"aligned/frame_{i:03d}.png"))
    section2 = f"MTCNN prepare end to end (align_files, {n} photos, batch {batch})"
    worker_counts = (1, 2)
    seconds2 = {w: [] for w in worker_counts}
    aligned = {}
    for r in range(repeats):
        for w in worker_counts if r % 2 == 0 else worker_counts[::-1]:
            out = tempfile.mkdtemp(prefix=f"bench_mtcnn_out{w}_")
            t0 = time.perf_counter()
            stats = align_files(items, out, cfg, workers=w, detector=detector if w == 1 else None, progress=False)
            seconds2[w].append(time.perf_counter() - t0)
            aligned[w] = stats["aligned"]
    for w in worker_counts:
        note = f"aligned {aligned[w]}/{n}" + ("; includes worker start-up (TF import + MTCNN load)" if w > 1 else "")
        rows.append(row(section2, f"workers={w}", "throughput", "images/s", [n / t for t in seconds2[w]], note=note))
    rows.append(
        row(section2, "workers=2 / workers=1", "speed-up", "ratio", [a / b for a, b in zip(seconds2[1], seconds2[2])])
    )
    return rows


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    emit(bench())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
