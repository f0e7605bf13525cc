"""ray_cluster.yaml is a valid Ray cluster-launcher config (checked by Ray's own validation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_ray_cluster_yaml_passes_rays_validation() -> None:
    util = pytest.importorskip("ray.autoscaler._private.util")
    config = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    prepared = util.prepare_config(config)
    util.validate_config(prepared)
    assert prepared["provider"]["type"] == "local"
    starts = " ".join(prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"])
    assert starts.count("RAY_AUTH_MODE=token") == 2  # the same token auth on every node

