"""Training data: identity folders, insightface RecordIO packs, TFRecord, and the tf.data pipeline."""
