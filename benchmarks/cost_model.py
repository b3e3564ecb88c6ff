"""The paper profile's compute cost: FLOPs counted in the TensorFlow graph, and what they imply on GPUs.

Measured (from the graph, no timing): floating-point operations of one image through the paper network
(``experiments/configs/paper.yaml``: reduced Inception-ResNet-v1, both branches) forward, and forward +
backward (the gradient of a scalar loss w.r.t. every trainable variable, as the train step computes it),
counted by TensorFlow's profiler (``tf.compat.v1.profiler``, float_operation: a multiply-add is 2 FLOPs).
Estimated (arithmetic): total FLOPs of the Table 2 / Table 4 protocol on CK+ / Oulu-CASIA, and the wall time
they imply at a stated device peak and utilisation. Prints JSON.

    python -m benchmarks.cost_model [--image-size 160] [--gpu-peak-tflops 19.5] [--utilisation 0.6] [--gpus 8]
"""

from __future__ import annotations

import argparse
import json
import sys

#: protocol sizes (Ming et al. 2019, Section 5.1; the readers' counts: first + last 3 frames per sequence)
DATASETS = {
    # images in the protocol, images that carry an expression label (trained rows), subjects
    "ckplus": {"images": 1308, "labelled": 1308, "subjects": 118},
    "oulu": {"images": 1920, "labelled": 1440, "subjects": 80},  # 6 classes: neutral first frames unlabelled
}


def count_flops(image_size: int = 160, batch: int = 2, num_identities: int = 100, num_expressions: int = 8) -> dict:
    """FLOPs per image of the paper network at ``image_size``: forward, forward + backward, and parameters."""
    import keras
    import tensorflow as tf

    from dynamic_mtl.builders import build_face_expression_network

    network = build_face_expression_network(
        num_identities, num_expressions, backbone="inception_resnet_v1_reduced", image_size=image_size, dropout_rate=0.5
    )
    spec = tf.TensorSpec([batch, image_size, image_size, 3], tf.float32)

    def total(function) -> int:
        graph = tf.function(function).get_concrete_function(spec).graph
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)

    def forward(x):
        return network(x, training=True)

    def forward_backward(x):
        with tf.GradientTape() as tape:
            out = network(x, training=True)
            loss = tf.reduce_sum(out["identity_logits"]) + tf.reduce_sum(out["expression_logits"])
        return tape.gradient(loss, network.trainable_variables)

    fwd, train = total(forward), total(forward_backward)
    return {
        "image_size": image_size,
        "parameters": int(network.count_params()),
        "trainable_parameters": int(sum(keras.ops.size(v) for v in network.trainable_variables)),
        "forward_gflop_per_image": fwd / batch / 1e9,
        "train_gflop_per_image": train / batch / 1e9,
        "train_over_forward": train / fwd,
    }


def protocol_cost(
    train_gflop: float,
    forward_gflop: float,
    epochs: int = 90,
    folds: int = 10,
    trained_rows: int = 11,
    validation_share: float = 0.12,
) -> dict:
    """Total FLOPs of one table's protocol per dataset: every trained row x fold x epoch over the fold's training
    images, plus the forward passes of validation (every epoch) and test (once)."""
    out = {}
    for name, d in DATASETS.items():
        test = d["images"] / folds
        train_pool = d["labelled"] * (folds - 1) / folds
        train = train_pool * (1 - validation_share)
        val = d["images"] * (folds - 1) / folds * validation_share
        per_row_fold = train * epochs * train_gflop + (val * epochs + test) * forward_gflop
        total = per_row_fold * trained_rows * folds
        out[name] = {
            "train_images_per_fold": round(train),
            "validation_images_per_fold": round(val),
            "test_images_per_fold": round(test),
            "epochs": epochs,
            "folds": folds,
            "trained_rows": trained_rows,
            "gflop_per_row_and_fold": per_row_fold,
            "total_pflop": total / 1e6,
        }
    return out


def wall_time(total_pflop: float, peak_tflops: float, utilisation: float, gpus: int = 1, scaling: float = 1.0) -> float:
    """Hours for ``total_pflop`` on ``gpus`` devices at ``utilisation`` of ``peak_tflops`` each (``scaling``:
    the multi-GPU efficiency of data parallelism)."""
    return total_pflop * 1e15 / (peak_tflops * 1e12 * utilisation * gpus * scaling) / 3600


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cost_model", description=__doc__.split("\n\n")[0])
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--epochs", type=int, default=90, help="the paper profile's epochs (default 90)")
    p.add_argument(
        "--gpu-peak-tflops",
        type=float,
        default=19.5,
        help="dense FP32 peak of one GPU (default 19.5: NVIDIA A100 datasheet, non-tensor-core FP32)",
    )
    p.add_argument("--utilisation", type=float, default=0.6, help="share of the peak reached (default 0.6)")
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--scaling", type=float, default=0.9, help="MirroredStrategy efficiency on --gpus (default 0.9)")
    a = p.parse_args(argv)
    flops = count_flops(a.image_size)
    cost = protocol_cost(flops["train_gflop_per_image"], flops["forward_gflop_per_image"], epochs=a.epochs)
    for d in cost.values():
        d["hours_1_gpu"] = wall_time(d["total_pflop"], a.gpu_peak_tflops, a.utilisation)
        d[f"hours_{a.gpus}_gpus"] = wall_time(d["total_pflop"], a.gpu_peak_tflops, a.utilisation, a.gpus, a.scaling)
    json.dump(
        {
            "measured": flops,
            "assumed": {
                "gpu_peak_tflops": a.gpu_peak_tflops,
                "utilisation": a.utilisation,
                "gpus": a.gpus,
                "scaling": a.scaling,
            },
            "estimated": cost,
        },
        sys.stdout,
        indent=2,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
