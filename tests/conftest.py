"""Fixtures shared by the test modules."""
import pytest


@pytest.fixture(scope="session")
def tiny_k400(tmp_path_factory):
    """A Kinetics fixture of 16 train videos with its manifest and flow-edge cache."""
    from datasets.sources.fixtures import make_kinetics400
    from datasets.manifests.manifest import build_manifest, entries_for
    from datasets.motion.flow import build_cache, make_flow_estimator

    base = tmp_path_factory.mktemp("tiny_k400")
    root = base / "Kinetics400"
    make_kinetics400(root, {"frames": 16, "height": 40, "width": 48, "fps": 10, "num_classes": 2, "train_per_class": 8, "val_per_class": 1}, seed=0)
    manifest, _ = build_manifest(entries_for("k400", root), root, min_frames=8, verify=False)
    manifest.to_csv(base / "k400.csv", index=False)
    build_cache(manifest, root, "edge", base / "edge", 40, make_flow_estimator("farneback"))
    return base, root
