"""Reference sentences: every service must answer them like the exported model does.

`check_parity` compares PyTorch with ONNX Runtime on them, and the load test sends them to
every service before timing anything. Kinds: `short` (a few words to two sentences),
`long` (a paragraph, well under the 512-token limit) and `truncated` (over 512 tokens, so
the service must cut it at the model's maximum length).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ReferenceSentence(Mapping[str, str]):
    """One sentence; reads as attributes (`s.text`) or as a mapping (`s["text"]`, `dict(s)`)."""

    id: str
    kind: str  # "short" | "long" | "truncated"
    text: str

    def __getitem__(self, key: str) -> str:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


# How close every answer must be to ONNX Runtime's own (PyTorch vs ONNX in the export, each
# service vs ONNX Runtime before timing): label equal, score within this.
TOLERANCE = 1e-4

SEED_SENTENCE = "I love you. I like you. I am your friend."

_SHORT = (
    SEED_SENTENCE,
    "This is the worst service I have ever had.",
    "Great!",
    "Terrible.",
    "The package arrived on Tuesday.",
    "I'm not sure how I feel about the new design, but the colours are nice.",
    "The soup was cold, the bread was stale and the waiter ignored us.",
    "What a lovely, generous and thoughtful gesture — thank you!",
    "ok",
)

_REVIEW_GOOD = (
    "We stayed at the small hotel by the harbour for a week in early June and it was one "
    "of the nicest holidays we have had in years. The room was bright and spotless, with a "
    "balcony that looked straight over the fishing boats, and the bed was so comfortable "
    "that we slept better than at home. Breakfast was generous: fresh bread from the bakery "
    "next door, local cheese, fruit, eggs cooked any way you liked and proper coffee. The "
    "owners remembered our names from the first day, recommended quiet beaches and family "
    "restaurants that tourists rarely find, and even lent us their umbrellas when a summer "
    "storm rolled in. We are already planning to go back next year."
)
_REVIEW_BAD = (
    "I really wanted to like this laptop, but after three weeks I am sending it back. The "
    "screen is dim and the colours look washed out, the fan roars as soon as you open a "
    "browser, and the battery, advertised at twelve hours, barely lasts four. Twice the "
    "machine froze during a video call and had to be forced off, losing an afternoon of "
    "work. Customer support kept me on hold for forty minutes, then told me to reinstall the "
    "operating system, which changed nothing. For this price I expected far better build "
    "quality, and the trackpad already rattles. Avoid it."
)
_STORY = (
    "The station was almost empty when the last train pulled in. An old man with a "
    "paper bag of oranges stepped down carefully, looked up at the clock, and smiled as if "
    "it had told him something he had been waiting years to hear. A girl on the bench "
    "opposite put away her phone. Neither of them spoke; the porter whistled, the doors "
    "closed, and the train slid on into the dark towards the coast."
)
_MIXED = (
    "The conference had brilliant speakers and a beautiful venue, but the organisation was "
    "chaotic: sessions started late, rooms were too small, the wifi failed every afternoon "
    "and lunch ran out before half of us had eaten. I learned a lot and met wonderful "
    "people, yet I left exhausted and frustrated, and I am not sure I would pay for it again."
)
_TECHNICAL = (
    "To reproduce the issue, start the server with two worker threads, send a request whose "
    "body is exactly 4096 bytes, and then close the connection before the response headers "
    "arrive. The worker logs a broken pipe, returns to the pool, and the next request on "
    "that worker is answered with the previous request's body. Setting the keep-alive "
    "timeout to zero hides the problem but does not fix it."
)
_NEWS = (
    "Residents of the valley woke on Sunday to find the river had burst its banks overnight, "
    "flooding dozens of homes and cutting the main road to the town. Volunteers worked "
    "through the day filling sandbags and ferrying elderly neighbours to the school, which "
    "has been opened as a shelter. Officials said no one had been seriously hurt, but warned "
    "that more rain is expected and that the clean-up could take months; many families have "
    "lost furniture, cars and the contents of their ground floors."
)
_LONG = (
    _REVIEW_GOOD,
    _REVIEW_BAD,
    _STORY,
    _MIXED,
    _TECHNICAL,
    _NEWS,
    f"{_REVIEW_GOOD} {_STORY}",
    f"{_REVIEW_BAD} {_NEWS}",
)
_TRUNCATED = (
    " ".join([_REVIEW_GOOD, _STORY, _MIXED, _REVIEW_GOOD, _TECHNICAL, _REVIEW_GOOD]),
    " ".join([_REVIEW_BAD, _NEWS, _REVIEW_BAD, _MIXED, _REVIEW_BAD, _STORY]),
    " ".join([_TECHNICAL, _STORY, _NEWS, _MIXED, _REVIEW_GOOD, _REVIEW_BAD, _TECHNICAL]),
    " ".join(["great"] * 700),
    " ".join([SEED_SENTENCE] * 60),
)


def _numbered(kind: str, prefix: str, texts: tuple[str, ...]) -> list[ReferenceSentence]:
    return [ReferenceSentence(f"{prefix}-{i:02d}", kind, t) for i, t in enumerate(texts, 1)]


REFERENCE_SENTENCES: tuple[ReferenceSentence, ...] = (
    *_numbered("short", "short", _SHORT),
    *_numbered("long", "long", _LONG),
    *_numbered("truncated", "trunc", _TRUNCATED),
)
