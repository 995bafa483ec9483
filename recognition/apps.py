from django.apps import AppConfig


class RecognitionConfig(AppConfig):
    name = "recognition"
    verbose_name = "Recognition"
    # Deliberately no ready(): the engine (and TensorFlow) loads on first use, not at start-up.
