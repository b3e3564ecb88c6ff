"""Images/s of the harness's input pipeline alone vs images/s the train step consumes.

On prepared synthfaces data (``prepare_synthfaces``; 182 px crops for the paper profile), decoded
once into memory as the harness does (``experiments.face_expression.data.ImageStore``), three things are timed
interleaved, repeat by repeat, in one process:

* ``pipeline``: ``data_prep.pipeline.training_batches`` with the harness's preprocessing spec
  (the pipeline ``dynamic-mtl run`` trains on: one epoch's dataset built from the in-memory images,
  stateless random crop, resize, flip, prewhiten, batch): ``steps`` batches of a new epoch's
  dataset (so nothing was prefetched in the background meanwhile; start-up included);
* ``train step``: ``fit`` of the dynamic model on one in-memory batch (no input cost);
* ``fit on pipeline``: ``fit`` of the same model reading the pipeline (end to end).

Headroom = pipeline images/s / train-step images/s, per repeat.

    python -m benchmarks.pipeline [--profile small|paper] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from benchmarks.common import emit, quick_mode, row, tiny_mode
from experiments.optimizers import AUTHORS_RMSPROP, make_optimizer


def profile_settings(profile: str) -> dict:
    quick, tiny = quick_mode(), tiny_mode()
    if profile == "small":
        s = dict(backbone="small_cnn", crop=64, image_size=64, batch=64, identities=40, steps=8, repeats=4)
        if quick:
            s.update(identities=20, steps=6, repeats=3)
        if tiny:
            s.update(crop=32, image_size=32, batch=8, identities=4, steps=2, repeats=1)
        return s
    s = dict(
        backbone="inception_resnet_v1_reduced", crop=182, image_size=160, batch=16, identities=10, steps=3, repeats=3
    )
    if quick:
        s.update(batch=8, identities=10, steps=2, repeats=2)  # 10 folds need >= 10 identities
    if tiny:
        s.update(crop=96, image_size=80, batch=2, identities=4, steps=1, repeats=1)
    return s


def prepare(out: str, identities: int, crop: int) -> str:
    from data_prep.prepare import prepare_synthfaces

    prepare_synthfaces(out, num_identities=identities, image_size=crop, num_folds=min(10, identities), progress=False)
    return out


def bench(profile: str, data: str | None = None) -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    import dynamic_mtl as dm
    from benchmarks.train_step import phase_timer
    from data_prep.pipeline import Preprocessing, identity_map, training_batches
    from data_prep.prepare import read_manifest
    from experiments.face_expression.data import ImageStore

    s = profile_settings(profile)
    data = data or prepare(tempfile.mkdtemp(prefix=f"bench_synth_{profile}_"), s["identities"], s["crop"])
    manifest = read_manifest(data)
    rows = manifest[manifest["expression"] >= 0]
    id_map = identity_map(rows["subject"])
    images = ImageStore(data, rows["path"].tolist()).take(rows["path"].tolist())
    labels = {
        "identity": np.array([id_map[str(v)] for v in rows["subject"]], np.int32),
        "expression": rows["expression"].to_numpy().astype(np.int32),
    }
    spec = Preprocessing(s["image_size"])  # as FoldRunner.preprocessing: 160/182 crop, flip, prewhiten
    epochs = iter(range(1_000_000))

    def epoch_dataset():
        """A new epoch's batches, as the harness builds one per epoch."""
        return training_batches(images, labels, spec, s["batch"], seed=next(epochs))

    n_ids, n_expr = len(id_map), int(manifest["expression"].max()) + 1

    keras.utils.set_random_seed(0)
    model = dm.build_face_expression_model(n_ids, n_expr, backbone=s["backbone"], image_size=s["image_size"])
    model.compile(
        network_optimizer=make_optimizer("RMSprop", 1e-4, AUTHORS_RMSPROP),
        weight_optimizer=dm.default_weight_optimizer(),
        jit_compile=False,
    )
    x, y = next(iter(epoch_dataset()))
    in_memory = tf.data.Dataset.from_tensors((x, y)).repeat()
    timer = phase_timer("epoch")

    def run_pipeline():
        # A new epoch's dataset each time, so no batch was prefetched while the other cases ran
        # (conservative: the time includes building the dataset and filling the pipeline).
        t0 = time.perf_counter()
        iterator = iter(epoch_dataset())
        for _ in range(s["steps"]):
            batch = next(iterator)
        float(batch[0][0, 0, 0, 0])  # the last batch is materialised
        seconds = time.perf_counter() - t0
        del iterator
        return seconds

    def run_fit(dataset):
        model.fit(dataset, epochs=1, steps_per_epoch=s["steps"], verbose=0, callbacks=[timer])
        return timer.seconds[-1]

    cases = {
        "pipeline": run_pipeline,
        "train step (in-memory batch)": lambda: run_fit(in_memory),
        "fit on pipeline": lambda: run_fit(epoch_dataset()),
    }
    for fn in cases.values():  # warm-up: trace, fill prefetch buffers
        fn()
    seconds = {name: [] for name in cases}
    names = list(cases)
    for r in range(s["repeats"]):
        for name in names[r % 3 :] + names[: r % 3]:
            seconds[name].append(cases[name]())
    images = s["steps"] * s["batch"]
    section = (
        f"input pipeline ({profile}: {s['backbone']}, {s['crop']} px crops -> {s['image_size']} px, "
        f"batch {s['batch']}, {len(manifest)} images)"
    )
    rows = [row(section, name, "throughput", "images/s", [images / t for t in seconds[name]]) for name in names]
    headroom = [b / a for a, b in zip(seconds["pipeline"], seconds["train step (in-memory batch)"])]
    rows.append(row(section, "pipeline / train step", "headroom", "ratio", headroom, target=">= 3"))
    slowdown = [b / a for a, b in zip(seconds["train step (in-memory batch)"], seconds["fit on pipeline"])]
    rows.append(
        row(
            section,
            "fit on pipeline / train step",
            "step time ratio",
            "ratio",
            slowdown,
            note="1.0: the input pipeline is hidden",
        )
    )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="small", choices=("small", "paper"))
    p.add_argument("--data", default=None, help="a prepared synthfaces directory (default: prepare one)")
    a = p.parse_args(argv)
    emit(bench(a.profile, a.data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
