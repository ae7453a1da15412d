"""Image evaluation under DDP: generation sharded over 2 CPU processes (gloo), features
gathered on rank 0, scores equal to one process's, and no hang on the other rank."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ganzoo.data.images import ImageDataModule
from ganzoo.eval.images import image_metrics
from ganzoo.metrics.images import ImageMetrics
from tests.test_eval_images import _FakeGAN, _metrics_cfg

# 7 batches of 50 and one of 20 (n = 370): the shares differ in size and length.
SETTINGS = dict(n_samples=370, batch_size=50, kid_subsets=5, kid_subset_size=40,
                extractor={"_target_": "tests.tiny_extractor.TinyFeatures"})


class _CountingGAN(_FakeGAN):
    def __init__(self) -> None:
        self.seeds: list[int] = []

    def generate(self, n, seed=0, labels=None):
        self.seeds.append(seed)
        return super().generate(n, seed=seed, labels=labels)


def _metrics() -> ImageMetrics:
    return image_metrics(_metrics_cfg(**SETTINGS),
                         ImageDataModule("digits", [1, 16, 16], batch_size=8))


def _rank(rank: int, port: int, queue) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        metrics, module = _metrics(), _CountingGAN()
        fake = metrics.fake_features(module)
        figures = metrics(module)
        dist.barrier()  # the other rank is not left waiting in a collective
        queue.put((rank, module.seeds, None if fake is None else fake[0], figures))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# torchmetrics warns on constructing KID that it keeps all features; this test builds one.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save:UserWarning")
def test_sharded_generation_gives_the_single_process_scores():
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r, rest) for r, *rest in (queue.get(timeout=300) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    single_module = _CountingGAN()
    single = _metrics()
    features, _ = single.fake_features(single_module)
    expected = single(single_module)

    # Each rank generated every other batch, twice (fake_features, then the scores).
    assert results[0][0] == [0, 2, 4, 6] * 2 and results[1][0] == [1, 3, 5, 7] * 2
    # Rank 0 holds all 370 features in batch order; rank 1 none, and no scores.
    torch.testing.assert_close(results[0][1], features, rtol=0, atol=0)
    assert results[1][1] is None and results[1][2] == {}
    assert set(expected) == {"eval/fid", "eval/kid", "eval/kid_std", "eval/is", "eval/is_std"}
    assert results[0][2] == pytest.approx(expected, rel=1e-6)
