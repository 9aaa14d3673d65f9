"""`Classifier.classify_batch` on the real exported model (servekit.inference): every text of
a padded batch of mixed lengths answers as it does alone, for every padding cap."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from servekit import inference
from servekit.plan import Limits, plan_all

pytestmark = pytest.mark.system
TOLERANCE = 1e-4


TEXTS = [
    "I love you. I like you. I am your friend.",
    "Great service.",
    "This is the worst film I have ever seen. I hate it.",
    "a",
    "The hotel was close to the station, but the room smelled of smoke and the air "
    "conditioning rattled all night; I would not stay here again.",
    "café ☕ naïve résumé — 日本語のテキスト 🙂",
    "What a wonderful, delightful surprise!",
    "word " * 1000,  # truncated to max_length
    "The food was cold and the service was terrible. " * 6,
    "Not bad.",
    "I love you. I like you. I am your friend.",  # a duplicate: the same answer twice
    "The meeting is at ten o'clock.",
]


def limits(max_padding: float, max_batch_tokens: int = 8192) -> Limits:
    return Limits(
        max_batch_size=32, max_batch_tokens=max_batch_tokens, max_padding=max_padding, max_wait_ms=0
    )


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> Any:
    return inference.Classifier(model_dir)


@pytest.fixture(scope="module")
def unbatched(classifier: Any) -> list[Any]:
    return [classifier.classify(text) for text in TEXTS]


class TestClassifyBatch:
    @pytest.mark.parametrize("max_padding", [0.0, 0.25, 0.5, 0.99])
    def test_mixed_lengths_answer_as_unbatched(
        self, classifier: Any, unbatched: list[Any], max_padding: float
    ) -> None:
        answers = classifier.classify_batch(TEXTS, limits(max_padding=max_padding))
        assert len(answers) == len(TEXTS)
        for text, got, want in zip(TEXTS, answers, unbatched, strict=True):
            assert got.label == want.label, text[:40]
            assert abs(got.score - want.score) <= TOLERANCE, (text[:40], got, want)
        if max_padding == 0.99:
            assert {a.batch_size for a in answers} == {len(TEXTS)}, "nothing was padded"

    def test_the_answers_follow_the_input_order(
        self, classifier: Any, unbatched: list[Any]
    ) -> None:
        order = list(range(len(TEXTS)))
        random.Random(3).shuffle(order)
        answers = classifier.classify_batch([TEXTS[i] for i in order], limits(max_padding=0.99))
        for position, index in enumerate(order):
            assert abs(answers[position].score - unbatched[index].score) <= TOLERANCE

    def test_a_batch_of_one_is_the_unbatched_answer(
        self, classifier: Any, unbatched: list[Any]
    ) -> None:
        for text, want in zip(TEXTS, unbatched, strict=True):
            (got,) = classifier.classify_batch([text])
            assert (got.label, got.score, got.batch_size, got.sub_batch) == (
                want.label,
                want.score,
                1,
                0,
            )

    def test_sub_batches_follow_the_plan(self, classifier: Any) -> None:
        small = limits(max_batch_tokens=512, max_padding=0.25)
        answers = classifier.classify_batch(TEXTS, small)
        rows = classifier.tokenizer.encode_rows(list(TEXTS), classifier.info.inputs)
        lengths = [len(ids) for ids in rows["input_ids"]]
        plan = plan_all(lengths, small)
        assert len(plan) > 1
        for number, group in enumerate(plan):
            for index in group:
                assert (answers[index].sub_batch, answers[index].batch_size) == (
                    number,
                    len(group),
                )
        assert len({answer.tokenization_us for answer in answers}) == 1, "one tokenizer call"
        assert classifier.classify_batch([]) == []
