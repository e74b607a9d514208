"""Adapter checkpoint retention: the newest few stay, the rest go."""
def test_prune_adapters_keeps_the_newest(tmp_path):
    from pipeline.train import prune_adapters
    for step in (5, 10, 40, 100, 20):
        (tmp_path / f"step_{step}.ckpt").write_bytes(b"x")
        (tmp_path / f"step_{step}.json").write_text("{}")
    (tmp_path / "step_final.ckpt").write_bytes(b"not a step")   # never touched
    removed = prune_adapters(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["step_10.ckpt", "step_10.json", "step_20.ckpt",
                                               "step_20.json", "step_5.ckpt", "step_5.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_100.ckpt", "step_100.json", "step_40.ckpt", "step_40.json", "step_final.ckpt"]
