"""The learned router: training, the router file, thresholds, and the policy over it."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tether.cache.embedders import FakeEmbedder
from tether.errors import ConfigError
from tether.messages import Message
from tether.routing import RouteInput, build_policy
from tether.routing.learned.dataset import Outcome, Outcomes
from tether.routing.learned.evaluation import routed_accuracy
from tether.routing.learned.features import text_features
from tether.routing.learned.model import TrainedRouter
from tether.routing.learned.train import TrainOptions, train_router
from tether.routing.policies.learned import LearnedPolicy
from tether.settings import ModelSettings, Settings

REASON = re.compile(
    r"p\(cheap passes\)=\d\.\d\d, p\(premium passes\)=\d\.\d\d: gain -?\d\.\d\d (<=|>) "
    r"-?\d\.\d\d: (cheap|premium) \((small|large)\)"
)


def ask(text: str) -> RouteInput:
    return RouteInput(messages=(Message("user", text),))


@pytest.fixture(scope="module")
def trained(gsm8k: Outcomes) -> TrainedRouter:
    return train_router(gsm8k, FakeEmbedder(64), TrainOptions(folds=3, seed=7, embedding="minilm"))


def test_round_trip_keeps_every_prediction(
    trained: TrainedRouter, gsm8k: Outcomes, tmp_path: Path
) -> None:
    path = tmp_path / "r.npz"
    trained.save(path)
    loaded = TrainedRouter.load(path, embedder="fake-64")
    embedder = FakeEmbedder(64)
    texts = gsm8k.texts[:40]
    vectors, features = embedder.embed(texts), text_features(texts)
    before = trained.predict(vectors, features, top=3)
    after = loaded.predict(vectors, features, top=3)
    # Neighbour vectors are stored as float16: probabilities agree to well under 1%.
    assert [p.gain for p in after] == pytest.approx([p.gain for p in before], abs=5e-3)
    assert [p.neighbours[0][0] for p in after] == [p.neighbours[0][0] for p in before]
    assert loaded.threshold == trained.threshold
    assert loaded.k == trained.k
    assert loaded.texts[0] == gsm8k.texts[0][:200]
    first = LearnedPolicy(trained, embedder, cheap="small", premium="large")
    second = LearnedPolicy(loaded, embedder, cheap="small", premium="large")
    for text in texts:
        a, b = first.decide(ask(text)), second.decide(ask(text))
        assert REASON.fullmatch(a.reason), a.reason
        if abs(first.score(ask(text)).prediction.gain - trained.threshold) > 0.01:  # type: ignore[union-attr]
            assert a.model == b.model


def test_router_learns_which_requests_the_cheap_model_fails() -> None:
    rng = np.random.default_rng(0)
    topics = ["integral derivative theorem proof", "hello thanks weather lunch"]
    rows = []
    for i in range(300):
        hard = i % 2 == 0
        words = topics[0 if hard else 1].split()
        text = " ".join(rng.choice(words, size=6)) + f" item {i}"
        cheap_passes = (not hard) if rng.random() > 0.1 else hard
        rows.append(Outcome(text, cheap_passes, True))
    router = train_router(
        Outcomes(tuple(rows)), FakeEmbedder(64), TrainOptions(folds=3, embedding="minilm")
    )
    policy = LearnedPolicy(router, FakeEmbedder(64), cheap="small", premium="large")
    assert policy.decide(ask("prove the theorem with an integral")).model == "large"
    assert policy.decide(ask("hello, thanks for lunch")).model == "small"
    # Sending every hard request first recovers 90% of the gap at 50% premium calls (10% of
    # the labels are flipped): APGR 0.70 at best; a router that learned nothing gets 0.5.
    assert router.info["held_out_apgr"] > 0.65


def test_threshold_for_a_premium_share(trained: TrainedRouter) -> None:
    for share in (0.1, 0.3, 0.6):
        threshold = trained.threshold_for_share(share)
        sent = float((trained.holdout_scores > threshold).mean())
        assert sent == pytest.approx(share, abs=0.02)
    assert not (trained.holdout_scores > trained.threshold_for_share(0.0)).any()
    assert (trained.holdout_scores > trained.threshold_for_share(1.0)).all()


def test_threshold_for_a_quality_target_is_the_cheapest_that_reaches_it(
    trained: TrainedRouter,
) -> None:
    premium_accuracy = trained.premium.mean()
    for target in (0.8, 0.9, 0.95):
        threshold = trained.threshold_for_quality(target)
        sent = trained.holdout_scores > threshold
        reached = routed_accuracy(sent, trained.cheap, trained.premium)
        assert reached >= target * premium_accuracy - 1e-9
        # One premium call fewer (the lowest-gain one sent) would miss the target, unless none
        # was needed at all.
        if sent.any():
            fewer = sent.copy()
            fewer[np.flatnonzero(sent)[np.argmin(trained.holdout_scores[sent])]] = False
            assert routed_accuracy(fewer, trained.cheap, trained.premium) < reached + 1e-9


def test_corrupt_router_files_are_clear_errors(trained: TrainedRouter, tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    trained.save(good)
    cases = {
        "garbage.npz": b"\x00\x01 not a zip at all",
        "truncated.npz": good.read_bytes()[: len(good.read_bytes()) // 2],
        "empty.npz": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ConfigError) as caught:
            TrainedRouter.load(path)
        assert caught.value.file == str(path)
        assert "router file" in caught.value.message
        assert "tether route train" in caught.value.fix
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(ConfigError, match="no 'meta' array"):
        TrainedRouter.load(other)


def test_a_router_file_never_unpickles(trained: TrainedRouter, tmp_path: Path) -> None:
    """A tampered file whose meta entry is a pickled object: refused, and nothing runs."""
    mark = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[()]]:
            return (Path(str(mark)).touch, ())

    good, hostile = tmp_path / "good.npz", tmp_path / "hostile.npz"
    trained.save(good)
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(hostile, "w") as archive:
        for item in source.namelist():
            if item != "meta.npy":
                archive.writestr(item, source.read(item))
        array = np.empty(1, dtype=object)
        array[0] = Payload()
        with archive.open("meta.npy", "w") as handle:
            np.lib.format.write_array(handle, array, allow_pickle=True)
    pickle.loads(pickle.dumps(Payload()))  # the payload runs when unpickled ...
    assert mark.exists()
    mark.unlink()
    with pytest.raises(ConfigError, match="not a readable router file"):
        TrainedRouter.load(hostile)
    assert not mark.exists()  # ... and loading the router file never unpickles


def test_a_router_from_another_embedder_is_refused(trained: TrainedRouter, tmp_path: Path) -> None:
    path = tmp_path / "r.npz"
    trained.save(path)
    with pytest.raises(ConfigError) as caught:
        TrainedRouter.load(path, embedder="all-MiniLM-L6-v2-onnx-int8")
    assert "'fake-64'" in caught.value.message
    assert "all-MiniLM" in caught.value.message
    settings = Settings(
        models={"small": ModelSettings(provider="fake"), "large": ModelSettings(provider="fake")},
        routers={
            "smart": {
                "policy": "learned",
                "cheap": "small",
                "premium": "large",
                "path": path,
                "embedder": "fake",  # FakeEmbedder() is 64 wide too, but named fake-64: equal
            },
            "wrong": {
                "policy": "learned",
                "cheap": "small",
                "premium": "large",
                "path": path,
                "embedder": "minilm",
            },
        },
    )
    assert isinstance(build_policy("smart", settings), LearnedPolicy)
    with pytest.raises(ConfigError) as wrong:
        build_policy("wrong", settings)
    assert wrong.value.field == "routers.wrong.path"


def test_settings_targets_and_rules_ahead_of_the_router(
    trained: TrainedRouter, tmp_path: Path, gsm8k: Outcomes
) -> None:
    path = tmp_path / "r.npz"
    trained.save(path)
    base = {"policy": "learned", "cheap": "small", "premium": "large", "path": path,
            "embedder": "fake"}  # fmt: skip
    settings = Settings(
        models={"small": ModelSettings(provider="fake"), "large": ModelSettings(provider="fake")},
        routers={
            "all": {**base, "target_premium_share": 1.0},
            "none": {**base, "target_premium_share": 0.0},
            "quality": {**base, "target_quality": 0.9},
            "eager": {**base, "threshold": -1.0},  # a gain is never below -1: always premium
            "thrifty": {**base, "threshold": 1.0},  # never above 1: always cheap
            "greeter": {**base, "rules": [{"regex": "^hi$", "answer": "Hello!"}]},
        },
    )
    text = gsm8k.texts[3]
    assert build_policy("all", settings).decide(ask(text)).model == "large"
    assert build_policy("none", settings).decide(ask(text)).model == "small"
    assert build_policy("eager", settings).decide(ask(text)).model == "large"
    assert build_policy("thrifty", settings).decide(ask(text)).model == "small"
    quality = build_policy("quality", settings)
    assert isinstance(quality, LearnedPolicy)
    assert quality.threshold == pytest.approx(trained.threshold_for_quality(0.9))
    greeter = build_policy("greeter", settings)
    assert greeter.decide(ask("hi")).answer == "Hello!"
    assert greeter.decide(ask(text)).model in {"small", "large"}


def test_minilm_router_on_the_vendored_sample(gsm8k: Outcomes, mmlu: Outcomes) -> None:
    """The real embedder end to end: trained, saved, loaded, deciding with a reason."""
    from tether.cache.embedders import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    router = train_router(mmlu, embedder, TrainOptions(folds=3, embedding="minilm"))
    assert router.embedder == embedder.name == "all-MiniLM-L6-v2-onnx-int8-fused"
    assert router.dimensions == 384
    policy = LearnedPolicy(router, embedder, cheap="small", premium="large")
    scored = policy.score(ask(mmlu.texts[0]), neighbours=3)
    assert scored.prediction is not None
    nearest, similarity = scored.prediction.neighbours[0]
    assert nearest == 0
    assert similarity == pytest.approx(1.0, abs=1e-2)
    assert REASON.fullmatch(scored.decision.reason)
