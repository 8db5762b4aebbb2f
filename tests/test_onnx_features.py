"""training.framing.onnx_features.in_batches: every item once, in order, in lists of the batch size."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from training.framing.onnx_features import in_batches


@given(n=st.integers(0, 200), batch=st.integers(1, 40))
def test_batches_keep_every_item_in_order(n: int, batch: int) -> None:
    parts = list(in_batches(range(n), batch, every=1_000_000))
    assert [x for p in parts for x in p] == list(range(n))
    assert all(len(p) == batch for p in parts[:-1]) and all(0 < len(p) <= batch for p in parts)


def test_the_feature_pass_reads_one_pooled_vector_per_view(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """make_head.features on a small file: one pooled 1280-vector per view, in order, the same
    whatever the batch size (batches of 2 leave a short last batch)."""
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from PIL import Image

    from training.framing.make_head import Photo, features
    from training.testmodels import make_model_file

    model, _ = make_model_file(tmp_path / "m.onnx", size=64, padding="same")
    images = [Image.new("RGB", (80 + 10 * i, 60), (40 * i, 80, 120)) for i in range(5)]
    views = [(im, Photo(tmp_path / f"{i}.jpg", None)) for i, im in enumerate(images)]  # type: ignore[arg-type]
    x2, who = features(model, iter(views), batch=2)
    x5, _ = features(model, iter(views), batch=5)
    assert x2.shape == (5, 1280) and [p.path.name for p in who] == [f"{i}.jpg" for i in range(5)]
    assert np.allclose(x2, x5, atol=1e-5) and not np.allclose(x2[0], x2[4])
