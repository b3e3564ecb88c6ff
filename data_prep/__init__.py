"""Dataset preparation: raw datasets -> manifests, folds, pairs and tf.data pipelines."""
