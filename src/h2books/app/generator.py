"""A deterministic, invented science-fiction catalogue shaped like the 2016 post's data.

The post served 3000 books scraped from a public "best science fiction" list. We never
ship that data; instead this module invents a catalogue with the same shape, so the
server has realistic work to do out of the box:

* ids ``"1"`` .. ``"N"`` in rank order;
* ranked books carry ``vote_count, score, title, url, author`` in that key order, and
  the lowest-ranked ~28% carry no ``vote_count`` and use the post's other key order,
  ``author, url, title, score`` (both orders appear in the post's file);
* ``score`` is a string with thousands separators, falling from hundreds of
  thousands at rank 1 to tens at the bottom, like the post's;
* titles, series, authors and URL slugs are invented from word lists, a few with
  non-ASCII letters so ``json.dumps`` escaping is exercised as in the real data.

Everything comes from one seeded ``random.Random``: the same seed and count always
give the same catalogue, byte for byte, on every platform and Python version.
"""

from __future__ import annotations

import itertools
import math
import random
import re

__all__ = ["DEFAULT_COUNT", "DEFAULT_SEED", "generate_books"]

DEFAULT_SEED = 2016
DEFAULT_COUNT = 3000

URL_PREFIX = "https://www.example.org/book/show/"

# Share of books (the lowest-ranked ones) without a vote_count, as in the post (829/3000).
_UNVOTED_SHARE = 0.276

# (rank as a fraction of the list, score) anchors; scores are interpolated in log-log
# space between them, which reproduces the post's steep head and long flat tail.
_SCORE_ANCHORS = (
    (1 / 3000, 520_000.0),
    (10 / 3000, 120_000.0),
    (100 / 3000, 13_500.0),
    (300 / 3000, 2_750.0),
    (1000 / 3000, 400.0),
    (2000 / 3000, 130.0),
    (2700 / 3000, 100.0),
    (1.0, 70.0),
)

# Word lists for the invented titles and names; kept compact by hand.
# fmt: off
_ADJECTIVES = (
    "Glass", "Silent", "Iron", "Hollow", "Burning", "Last", "Drowned", "Crimson", "Endless",
    "Shattered", "Quiet", "Golden", "Broken", "Frozen", "Distant", "Sleeping", "Forgotten",
    "Radiant", "Obsidian", "Wandering", "Copper", "Pale", "Hidden", "Infinite", "Second",
    "Binary", "Electric", "Orbital", "Phantom", "Sunless", "Twin", "Velvet", "Ashen",
    "Clockwork", "Nameless", "Starborn", "Lunar", "Feral", "Prismatic", "Ultraviolet",
)
_NOUNS = (
    "Nebula", "Horizon", "Engine", "Signal", "Colony", "Machine", "Archive", "Citadel", "Drift",
    "Expanse", "Lattice", "Meridian", "Garden", "Harbor", "Protocol", "Oracle", "Reactor",
    "Beacon", "Labyrinth", "Frontier", "Singularity", "Station", "Vessel", "Ascendant",
    "Cartographer", "Chronicle", "Covenant", "Eclipse", "Exile", "Gate", "Heresy",
    "Inheritance", "Mirror", "Paradox", "Pilgrim", "Relay", "Remnant", "Spire", "Tide", "Wake",
    "Witness", "Zenith", "Comet", "Ark", "Veil", "Cipher", "Sentinel",
)
_PLACES = (
    "Vega", "Tessaract", "Kepler's Reach", "the Outer Rim", "Halcyon", "Mars", "Europa",
    "the Deep Belt", "Orison", "Castor Prime", "the Ninth Moon", "Titan", "Proxima",
    "the Long Dark", "Andromeda", "Nova Aurelia", "Ceres", "the Silent Worlds", "Helion",
)
_SERIES_WORDS = (
    "Cycle", "Saga", "Chronicles", "Trilogy", "Sequence", "Quartet", "Archives", "Wars",
    "Legacy", "Expanse", "Mythos", "Codex", "Ascension", "Odyssey", "Protocols",
)
_SUBTITLE_PARTS = (
    "A Novel",
    "A Tale of the Far Future",
    "Stories",
    "Book One",
    "A Space Opera",
    "The Lost Years",
    "An Interstellar Mystery",
    "Being an Account of the Last Voyage",
    "Voices from the Edge of the Known Universe",
    "The Collected Transmissions",
    "A Chronicle of the Outer Drift and the Final Ships to Leave the Dying Sun",
    "Notes from a Generation Ship Whose Passengers Forgot Where They Were Going",
)
_FIRST_NAMES = (
    "Ada", "Amara", "Anton", "Arjun", "Beatrix", "Cassian", "Corin", "Dara", "Elio", "Elena",
    "Farah", "Felix", "Gideon", "Hana", "Ilse", "Ivo", "Jonah", "Juno", "Kai", "Kira", "Lars",
    "Lena", "Malik", "Mei", "Mira", "Nadia", "Niko", "Odile", "Orrin", "Priya", "Quinn", "Rafe",
    "Rhea", "Sasha", "Selene", "Tariq", "Thea", "Ulric", "Vera", "Wren", "Xavier", "Yara",
    "Zane", "Zoë", "Søren", "Mariángela", "Dorothea", "Maximilian",
)
_LAST_NAMES = (
    "Abernathy", "Achebe-Lind", "Blackwood", "Castellan", "Drummond", "Eskildsen", "Farrow",
    "Gallagher", "Hartwell", "Ishikawa", "Jovanović", "Kestrel", "Lindqvist", "Marchetti",
    "Nakamura", "Okonkwo", "Pemberton", "Quillfeather", "Rourke", "Sandoval", "Thorne",
    "Underhill", "Valcourt", "Whitlock", "Xiong", "Ystrad", "Zielinski", "Moreau", "Halloran",
    "Vasquez-Reyes", "Brandt", "Okafor", "Lem", "Strand", "Fairweather",
)
# fmt: on

# Keeps every book under ~390 bytes of JSON (the post's largest is 385): the main
# title appears twice, once in the title and once as the URL slug.
_MAX_MAIN_TITLE = 95

_SLUG_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")


def generate_books(
    seed: int = DEFAULT_SEED, count: int = DEFAULT_COUNT
) -> dict[str, dict[str, str]]:
    """Invent ``count`` books, keyed ``"1"``..``str(count)`` in rank order."""
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    scores = _scores(rng, count)
    first_unvoted = count - round(count * _UNVOTED_SHARE)
    seen_titles: set[str] = set()
    books: dict[str, dict[str, str]] = {}
    for index in range(count):
        main_title, title = _title(rng, seen_titles)
        url = f"{URL_PREFIX}{rng.randint(1, 40_000_000)}.{_slug(main_title)}"
        author = _author(rng)
        score = f"{scores[index]:,}"
        if index < first_unvoted:
            vote_count = _vote_count(rng, (index + 1) / max(count, 1))
            books[str(index + 1)] = {
                "vote_count": vote_count,
                "score": score,
                "title": title,
                "url": url,
                "author": author,
            }
        else:
            books[str(index + 1)] = {"author": author, "url": url, "title": title, "score": score}
    return books


def _scores(rng: random.Random, count: int) -> list[int]:
    scores = []
    for index in range(count):
        rank_share = (index + 1) / count
        base = _interpolate_score(max(rank_share, _SCORE_ANCHORS[0][0]))
        scores.append(max(10, round(base * rng.lognormvariate(0.0, 0.12))))
    # The list is ranked by score, so it must never increase.
    scores.sort(reverse=True)
    return scores


def _interpolate_score(rank_share: float) -> float:
    for (x0, y0), (x1, y1) in itertools.pairwise(_SCORE_ANCHORS):
        if rank_share <= x1:
            t = (math.log(rank_share) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
    return _SCORE_ANCHORS[-1][1]


def _vote_count(rng: random.Random, rank_share: float) -> str:
    # Median votes fall from ~200 at the top to ~2 near the cut-off, with a wide spread.
    median_log = math.log(200) - math.log(100) * min(1.0, rank_share / 0.67) ** 0.5
    return str(min(999, max(1, round(rng.lognormvariate(median_log, 1.0)))))


def _title(rng: random.Random, seen: set[str]) -> tuple[str, str]:
    """Return (main title, full title with any series suffix), unique within the run."""
    while True:
        main = _main_title(rng)
        if rng.random() < 0.07:
            main = f"{main}: {rng.choice(_SUBTITLE_PARTS)}"
        if len(main) > _MAX_MAIN_TITLE:
            continue
        title = main
        if rng.random() < 0.5:
            title = f"{main} ({_series(rng)}, #{_series_number(rng)})"
        if title not in seen:
            seen.add(title)
            return main, title


def _main_title(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.15:
        return rng.choice(_NOUNS)
    if shape < 0.45:
        return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if shape < 0.65:
        return f"{rng.choice(_NOUNS)} of {rng.choice(_PLACES)}"
    if shape < 0.80:
        return f"{rng.choice(_FIRST_NAMES)}'s {rng.choice(_NOUNS)}"
    if shape < 0.96:
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}s"
    return (
        f"The {rng.choice(_NOUNS)} at the End of {rng.choice(_PLACES)} "
        f"and Other {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}s"
    )


def _series(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"The {rng.choice(_PLACES).removeprefix('the ')} {rng.choice(_SERIES_WORDS)}"
    return f"{rng.choice(_NOUNS)} {rng.choice(_SERIES_WORDS)}"


def _series_number(rng: random.Random) -> str:
    # Mostly low numbers, now and then a novella numbered like "#2.5".
    number = min(12, 1 + int(rng.expovariate(0.6)))
    return f"{number}.5" if rng.random() < 0.05 else str(number)


def _author(rng: random.Random) -> str:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    if rng.random() < 0.12:
        return f"{first} {chr(rng.randint(ord('A'), ord('Z')))}. {last}"
    return f"{first} {last}"


def _slug(main_title: str) -> str:
    return _SLUG_SEPARATORS.sub("_", main_title).strip("_")
