"""Customer feedback text with a known sentiment generating process (used by ``customers.py``).

Every feedback item has a true class y in {negative, neutral, positive} (drawn by
``customers.py`` from the customer's satisfaction). Its text is built from
templates; only the *cue phrases* depend on y, so the exact text-only posterior
is known:

    K          = 1 + Binomial(3, 0.35)                 cue phrases per item (1..4)
    ambiguous  ~ Bernoulli(AMBIGUOUS_SHARE)             mixed review: cues ignore y
    cue_k | y  ~ p_y   (k = 1..K, iid),   p_y = (1 - LEAK) * own_y + LEAK * shared
    cue_k      ~ p_mix = mean_y p_y                    (ambiguous items)
    own_y      Zipf(1.0) over the class's CUES[y]      shared: uniform over all cues

    P(y | text) ∝ prior_y * [(1 - a) * prod_k p_y(cue_k) + a * prod_k p_mix(cue_k)]
    with a = AMBIGUOUS_SHARE and prior_y the population class shares.

Negation is part of the cue vocabulary ("not good" is negative, "not bad"
neutral, "not disappointed" positive), so a unigram model is confused and a
bigram model is not. Each clause wraps its cue in class-independent words
(openers, topics, fillers, noise tokens), which carry no signal. ``compose``
returns the texts and the posterior, so the oracle accuracy is
``mean(argmax P(y | text) == y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = [
    "AMBIGUOUS_SHARE",
    "CUES",
    "LEAK",
    "SENTIMENTS",
    "SENTIMENT_CUTS",
    "SENTIMENT_LATE_COEF",
    "SENTIMENT_SAT_COEF",
    "ComposedText",
    "compose",
    "sentiment_probabilities",
]

SENTIMENTS = ("negative", "neutral", "positive")
# ordered logit of the class on a = SAT_COEF * satisfaction - LATE_COEF * late deliveries
SENTIMENT_SAT_COEF, SENTIMENT_LATE_COEF, SENTIMENT_CUTS = 2.5, 0.9, (-1.0, 1.0)
AMBIGUOUS_SHARE = 0.03
LEAK = 0.07
MAX_CUES = 4
CUES: dict[str, tuple[str, ...]] = {
    "negative": (
        "terrible",
        "not good",
        "awful",
        "disappointed",
        "never again",
        "waste of money",
        "broken",
        "rude staff",
        "not happy",
        "poor quality",
        "very slow",
        "damaged",
        "frustrating",
        "not worth it",
        "want a refund",
        "worst",
    ),
    "neutral": (
        "okay",
        "fine",
        "average",
        "as expected",
        "nothing special",
        "not bad",
        "decent",
        "acceptable",
        "not great",
        "standard",
        "so so",
        "normal",
        "fair enough",
        "mixed feelings",
        "alright",
        "ordinary",
    ),
    "positive": (
        "great",
        "excellent",
        "love it",
        "fast",
        "friendly staff",
        "highly recommend",
        "perfect",
        "amazing",
        "good value",
        "very happy",
        "not disappointed",
        "works well",
        "will buy again",
        "fantastic",
        "good",
        "super helpful",
    ),
}
OPENERS = ("the", "my", "our", "this", "that")
TOPICS = (
    "order",
    "delivery",
    "product",
    "store visit",
    "checkout",
    "support call",
    "package",
    "return",
    "app",
    "pickup",
    "refund process",
    "price",
    "website",
    "cashier",
    "parcel",
)
VERBS = ("was", "is", "felt", "seemed", "has been")
_SEPARATORS = (". ", " and ", ", ", "; ")
_WORDS_PER_CLAUSE = 6  # opener, topic, verb, filler, template, separator
_DRAWS_PER_ITEM = 2 * 4 + 4 * _WORDS_PER_CLAUSE
FILLERS = (
    "",
    "",
    "",
    "honestly",
    "overall",
    "this time",
    "again",
    "today",
    "i think",
    "to be fair",
    "as usual",
    "for sure",
    "thanks",
    "fyi",
    "btw",
)


@dataclass(frozen=True)
class ComposedText:
    """Texts plus the exact text-only posterior of the generator."""

    text: np.ndarray  # object array of str
    posterior: np.ndarray  # (n, 3) P(y | text) in SENTIMENTS order
    ambiguous: np.ndarray  # bool


def _emission() -> tuple[np.ndarray, np.ndarray]:
    """Vocabulary (all cue phrases) and the (3, V) emission matrix p_y."""
    vocab = np.array([c for y in SENTIMENTS for c in CUES[y]])
    n_per = len(CUES[SENTIMENTS[0]])
    zipf = 1.0 / np.arange(1, n_per + 1)
    zipf /= zipf.sum()
    p = np.full((3, len(vocab)), LEAK / len(vocab))
    for k in range(3):
        p[k, k * n_per : (k + 1) * n_per] += (1 - LEAK) * zipf
    return vocab, p


def compose(*, classes: np.ndarray, prior: np.ndarray, rng: np.random.Generator) -> ComposedText:
    """Build one text per item of ``classes`` (ints into SENTIMENTS); ``prior`` = population class shares.

    Example:
        >>> out = compose(classes=np.array([0, 2]), prior=np.ones(3) / 3, rng=np.random.default_rng(0))
        >>> out.posterior.shape
        (2, 3)
    """
    n = len(classes)
    vocab, p = _emission()
    p_mix = p.mean(axis=0)
    # One fixed-width block of uniforms per item: item i's text depends on row i only.
    draws = rng.random((n, _DRAWS_PER_ITEM))
    n_cues = 1 + (draws[:, : MAX_CUES - 1] < 0.35).sum(axis=1)
    ambiguous = draws[:, MAX_CUES - 1] < AMBIGUOUS_SHARE
    cdf_class = np.cumsum(p, axis=1)
    cdf_mix = np.cumsum(p_mix)
    cue_ids = np.empty((n, MAX_CUES), dtype=np.int64)
    for j in range(MAX_CUES):  # loop over cue slots, vectorised over items
        u = draws[:, MAX_CUES + j]
        by_class = np.minimum((u[:, None] > cdf_class[classes]).sum(axis=1), len(vocab) - 1)
        by_mix = np.minimum(np.searchsorted(cdf_mix, u, side="right"), len(vocab) - 1)
        cue_ids[:, j] = np.where(ambiguous, by_mix, by_class)
    used = np.arange(MAX_CUES)[None, :] < n_cues[:, None]

    log_p = np.log(p)[:, cue_ids] * used[None, :, :]  # (3, n, MAX_CUES)
    log_mix = (np.log(p_mix)[cue_ids] * used).sum(axis=1)
    log_lik = np.logaddexp(
        np.log1p(-AMBIGUOUS_SHARE) + log_p.sum(axis=2), np.log(AMBIGUOUS_SHARE) + log_mix
    )
    log_post = log_lik.T + np.log(prior)[None, :]
    log_post -= log_post.max(axis=1, keepdims=True)
    posterior = np.exp(log_post)
    posterior /= posterior.sum(axis=1, keepdims=True)

    text = np.full(n, "", dtype=object)
    for j in range(MAX_CUES):
        block = draws[
            :, 2 * MAX_CUES + j * _WORDS_PER_CLAUSE : 2 * MAX_CUES + (j + 1) * _WORDS_PER_CLAUSE
        ]
        clause = _clause(vocab[cue_ids[:, j]], block)
        sep = _pick(_SEPARATORS, block[:, 5])
        piece = clause if j == 0 else sep + clause
        text = np.where(used[:, j], text + piece, text)
    return ComposedText(text=text.astype(object), posterior=posterior, ambiguous=ambiguous)


def _pick(words: tuple[str, ...], u: np.ndarray) -> np.ndarray:
    return np.asarray(words, dtype=object)[
        np.minimum((u * len(words)).astype(np.int64), len(words) - 1)
    ]


def _clause(cue: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Wrap cue phrases in class-independent words: four templates, random fillers."""
    opener, topic, verb, filler = (
        _pick(w, block[:, k]) for k, w in enumerate((OPENERS, TOPICS, VERBS, FILLERS))
    )
    cue = cue.astype(object)
    templates = np.stack(
        [
            opener + " " + topic + " " + verb + " " + cue,
            cue + " " + topic,
            topic + ": " + cue,
            cue + ", " + opener + " " + topic,
        ]
    )
    which = np.minimum((block[:, 4] * templates.shape[0]).astype(np.int64), templates.shape[0] - 1)
    clause = templates[which, np.arange(len(cue))]
    return np.where(filler == "", clause, clause + " " + filler)


def class_shares(probabilities: np.ndarray) -> np.ndarray:
    """Population class shares from per-item class probabilities (rows sum to 1)."""
    shares = np.asarray(probabilities, dtype="float64").mean(axis=0)
    return np.asarray(shares / shares.sum())


def to_labels(classes: np.ndarray) -> pd.Series:
    """Class ints to their string labels."""
    return pd.Series(np.asarray(SENTIMENTS, dtype=object)[classes])


def sentiment_probabilities(sat: np.ndarray, late: np.ndarray) -> np.ndarray:
    """(n, 3) ordered-logit class probabilities of a feedback item given satisfaction and late deliveries."""
    a = SENTIMENT_SAT_COEF * sat - SENTIMENT_LATE_COEF * late
    p_neg = expit(SENTIMENT_CUTS[0] - a)
    p_pos = 1 - expit(SENTIMENT_CUTS[1] - a)
    return np.clip(np.stack([p_neg, 1 - p_neg - p_pos, p_pos], axis=1), 0.0, 1.0)
