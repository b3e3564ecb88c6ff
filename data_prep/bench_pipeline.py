"""Benchmark of the tf.data input pipeline (measured in a benchmark, never in a test).

    python -m data_prep.bench_pipeline --data data/synthfaces --image-size 64 --batch-size 90

Reports images/s of the training pipeline alone (decode, crop, resize, flip, standardise, batch),
to compare with a training step's throughput.
"""

from __future__ import annotations

import argparse
import json
import time


def benchmark(data: str, image_size: int = 64, batch_size: int = 90, epochs: int = 3, cache: bool = False) -> dict:
    """Iterate the training pipeline ``epochs`` times; return images/s per epoch (first epoch includes warm-up)."""
    from .pipeline import make_dataset
    from .prepare import read_manifest

    m = read_manifest(data)
    ds, _ = make_dataset(m, data, image_size, batch_size, training=True, seed=0, cache=cache)
    rates = []
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for x, _y in ds:
            n += int(x.shape[0])
        rates.append(n / (time.perf_counter() - t0))
    return {
        "images": int(len(m)),
        "image_size": image_size,
        "batch_size": batch_size,
        "cache": cache,
        "images_per_s": [round(r, 1) for r in rates],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="prepared dataset directory (with manifest.csv)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=90)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--cache", action="store_true")
    a = p.parse_args(argv)
    print(json.dumps(benchmark(a.data, a.image_size, a.batch_size, a.epochs, a.cache)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
