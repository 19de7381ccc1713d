"""``tf.data`` pipelines, one module per family: read files, preprocess, augment, batch."""
