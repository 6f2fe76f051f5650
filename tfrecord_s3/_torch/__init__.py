"""The PyTorch side of tfrecord-s3 (imports torch); public names live in ``tfrecord_s3.torch``."""
