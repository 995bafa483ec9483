"""Run in a subprocess with KERAS_BACKEND=jax by the tests: train a tiny model, export it.

    python tests/facetrain/jax_run.py DATA OUT MODEL_DIR STEPS [PRECISION]

TensorFlow is made unimportable first, as on a machine without it: the JAX path must not need
it. Writes OUT/result.json (losses, devices, the policy) and OUT/faces.npy + OUT/jax.npy (the
faces embedded and their embeddings under JAX through the exported file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.modules["tensorflow"] = None  # type: ignore[assignment]  # any `import tensorflow` now fails

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    data, out, model_dir, steps = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    precision = sys.argv[5] if len(sys.argv) > 5 else None
    import keras
    import numpy as np

    from facetrain.config import TrainConfig
    from facetrain.data.loader import BatchLoader, open_samples
    from facetrain.export import export_model
    from facetrain.keras_trainer import KerasTrainer
    from facetrain.margin import MarginConfig
    from facetrain.verification import embed_faces

    assert keras.backend.backend() == "jax"
    source = open_samples(data)
    config = TrainConfig(
        out=out / "run",
        backbone="mobilefacenet",
        embedding_size=16,
        input_size=32,
        margin=MarginConfig(s=16, m2=0.2),
        epochs=1000,
        max_steps=steps,
        batch_size=8,
        lr=0.05,
        eval_every=0,
        log_every=max(steps // 4, 1),
        precision=precision,
    )
    trainer = KerasTrainer(config, source, workers=1)
    result = trainer.train()
    backbone = keras.models.load_model(out / "run" / "backbone.keras", compile=False)
    spec = export_model(backbone, name="tiny-jax", model_dir=model_dir, source={"trained_by": "tests"})
    with BatchLoader(source, batch_size=8, input_size=32, flip=False, shuffle=False, workers=0) as loader:
        faces = np.concatenate([next(loader)[0] for _ in range(2)])
    faces = np.clip(np.rint(faces * 128.0 + 127.5), 0, 255).astype(np.uint8)
    exported = keras.models.load_model(model_dir / spec.filename, compile=False)
    np.save(out / "faces.npy", faces)
    np.save(out / "jax.npy", embed_faces(exported, faces, flip=False))
    (out / "result.json").write_text(
        json.dumps(
            {
                "losses": result.losses,
                "step": result.step,
                "devices": trainer.distribution.devices,
                "policy": trainer.policy,
                "optimizer": type(trainer.model.optimizer).__name__,
                "tensorflow_loaded": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None,
            }
        )
    )


if __name__ == "__main__":
    main()
