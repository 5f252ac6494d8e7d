"""Synthetic clickstreams with labeled anomalies: the embedded default dataset.

`generate_user` makes one user's whole history from `(seed, user_index)` alone, so the output does
not depend on how users are spread over Spark tasks. Normal users browse a funnel (search, view,
cart, checkout, purchase, with drop-offs) over a catalog with skewed popularity, at their own
activity level and hours. Anomalous users keep a normal history and get anomalous spans mixed in;
docs/generator.md describes each type and its signature.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

ANOMALY_TYPES = (
    "scraping_bot",
    "card_testing",
    "account_takeover",
    "click_farm",
    "cart_abuse",
    "velocity_burst",
)
RAW_COLUMNS = ("event_time", "user_id", "event_type", "item_id", "category", "price", "device", "country")
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_P = (0.55, 0.38, 0.07)
COUNTRIES = ("US", "DE", "FR", "GB", "PL", "BR", "IN", "JP")
COUNTRY_P = (0.32, 0.14, 0.1, 0.1, 0.08, 0.1, 0.1, 0.06)
UTC_OFFSET_H = {"US": -6, "DE": 1, "FR": 1, "GB": 0, "PL": 1, "BR": -3, "IN": 5, "JP": 9}
MALFORMATIONS = ("truncated", "bad_time", "no_user", "negative_price", "ancient_time")

# The shopping funnel: next event type given the current one ("end" closes the session).
FUNNEL = {
    "start": {"search": 0.45, "view": 0.45, "login": 0.10},
    "login": {"search": 0.5, "view": 0.5},
    "search": {"view": 0.8, "search": 0.12, "end": 0.08},
    "view": {"view": 0.55, "add_to_cart": 0.07, "search": 0.14, "end": 0.24},
    "add_to_cart": {"view": 0.42, "checkout": 0.28, "remove_from_cart": 0.08, "end": 0.22},
    "remove_from_cart": {"view": 0.6, "end": 0.4},
    "checkout": {"purchase": 0.72, "apply_coupon": 0.08, "view": 0.08, "end": 0.12},
    "apply_coupon": {"purchase": 0.85, "end": 0.15},
    "purchase": {"view": 0.25, "logout": 0.1, "end": 0.65},
    "logout": {"end": 1.0},
}
# The same, as cumulative tables for fast sampling with one uniform draw.
_FUNNEL_CDF = {state: (list(nxt), np.cumsum(list(nxt.values())).tolist()) for state, nxt in FUNNEL.items()}
# Median seconds a person spends after each event type before the next one.
DWELL_S = {
    "login": 8,
    "search": 18,
    "view": 45,
    "add_to_cart": 15,
    "remove_from_cart": 10,
    "checkout": 40,
    "apply_coupon": 20,
    "purchase": 25,
    "logout": 1,
    "password_change": 25,
    "address_change": 30,
}
MAX_NORMAL_EVENTS = 80
SESSION_GAP_S = 35 * 60  # normal sessions are kept this far from anomalous spans: labels stay unambiguous


@dataclass(frozen=True)
class AnomalyKnobs:
    weight: float  # relative share among anomalous users
    subtlety: float  # 0: blatant, 1: close to normal behavior


@dataclass(frozen=True)
class GeneratorParams:
    """Plain values the executors need (built from `generate.*` config)."""

    seed: int
    users: int
    days: int
    start_epoch_s: int
    anomaly_rate: float
    malformed_rate: float
    items: int
    categories: int
    anomalies: dict[str, AnomalyKnobs] = field(default_factory=dict)

    @property
    def farm_count(self) -> int:
        weights = sum(k.weight for k in self.anomalies.values()) or 1.0
        farm_users = self.users * self.anomaly_rate * self.anomalies["click_farm"].weight / weights
        return max(1, int(round(farm_users / 8)))  # about eight accounts per farm


@dataclass
class _Event:
    t: float  # seconds since the dataset's start
    event_type: str
    item: int = -1  # index into the catalog, -1 for none
    device: str = ""
    country: str = ""
    price: float = float("nan")  # overrides the catalog price when set


@dataclass
class _Span:
    anomaly_type: str
    events: list[_Event]


class Catalog:
    """Items in categories, with Zipf popularity and a price per item."""

    def __init__(self, seed: int, items: int, categories: int):
        rng = np.random.default_rng([seed, 1])
        self.categories = categories
        self.per_category = max(1, items // categories)
        self.size = self.per_category * categories
        self.category_p = _zipf(categories, 1.1)
        self.rank_p = _zipf(self.per_category, 1.2)
        self._category_cdf = np.cumsum(self.category_p).tolist()
        self._rank_cdf = np.cumsum(self.rank_p).tolist()
        base = rng.lognormal(np.log(30.0), 0.9, categories)
        self.price = np.round(np.repeat(base, self.per_category) * rng.lognormal(0, 0.4, self.size), 2)
        self.cheap = np.argsort(self.price)[: max(10, self.size // 50)]

    def category_of(self, item: int) -> int:
        return item // self.per_category

    def item_id(self, item: int) -> str:
        return f"i{item:06d}"

    def pick(self, rng: np.random.Generator, category: int) -> int:
        """An item of `category`, popular ones more often."""
        return category * self.per_category + _draw(self._rank_cdf, rng)

    def popular_category(self, rng: np.random.Generator) -> int:
        return _draw(self._category_cdf, rng)


@lru_cache(maxsize=4)
def catalog_for(seed: int, items: int, categories: int) -> Catalog:
    return Catalog(seed, items, categories)


# -- one user -----------------------------------------------------------------------------------


def generate_user(index: int, params: GeneratorParams) -> tuple[list[_Event], list[_Span], dict]:
    """One user's normal events, anomalous spans, and profile, from `(seed, index)` alone."""
    rng = np.random.default_rng([params.seed, 2, index])
    catalog = catalog_for(params.seed, params.items, params.categories)
    profile = _profile(rng, catalog)
    anomaly = _anomaly_type(rng, params)
    horizon = params.days * 86400.0

    dedicated = anomaly in ("scraping_bot", "click_farm") and rng.random() < 0.5
    normal: list[list[_Event]] = []
    if not dedicated:
        n_sessions = max(1, rng.poisson(profile["activity"] * params.days))
        for _ in range(n_sessions):
            start = _session_start(rng, profile, params.days)
            normal.append(_normal_session(rng, catalog, profile, start))

    spans = [] if anomaly is None else _anomalous_spans(anomaly, rng, catalog, profile, params, index, horizon)
    if spans:
        blocked = [(s.events[0].t - SESSION_GAP_S, s.events[-1].t + SESSION_GAP_S) for s in spans]
        normal = [s for s in normal if not any(lo <= s[-1].t and s[0].t <= hi for lo, hi in blocked)]
    events = [e for session in normal for e in session if e.t < horizon]
    return events, spans, profile


def _profile(rng: np.random.Generator, catalog: Catalog) -> dict:
    country = str(rng.choice(COUNTRIES, p=COUNTRY_P))
    return {
        "activity": float(np.clip(rng.lognormal(np.log(0.35), 0.9), 0.02, 5.0)),  # sessions per day
        "peak_hour_utc": (rng.normal(19.5, 3.5) - UTC_OFFSET_H[country]) % 24,
        "categories": rng.choice(catalog.categories, size=3, replace=False, p=catalog.category_p),
        "devices": [str(rng.choice(DEVICES, p=DEVICE_P))] * 2 if rng.random() < 0.7 else list(rng.choice(DEVICES, 2, p=DEVICE_P)),
        "country": country,
        "pace": float(rng.lognormal(0, 0.3)),  # some people click faster than others
    }


def _session_start(rng: np.random.Generator, profile: dict, days: int) -> float:
    day = rng.integers(0, days)
    hour = (profile["peak_hour_utc"] + rng.normal(0, 2.5)) % 24
    return float(day * 86400 + hour * 3600)


def _normal_session(rng, catalog: Catalog, profile: dict, start: float, pace: float = 1.0) -> list[_Event]:
    device = profile["devices"][int(rng.random() < 0.3)]
    category = _uniform_pick(profile["categories"], rng)
    events: list[_Event] = []
    state, t, item, carted = "start", start, -1, -1
    while len(events) < MAX_NORMAL_EVENTS:
        names, cdf = _FUNNEL_CDF[state]
        state = names[_draw(cdf, rng)]
        if state == "end":
            break
        if state == "view":
            if rng.random() < 0.3:  # wander off to another category
                category = catalog.popular_category(rng) if rng.random() < 0.4 else _uniform_pick(profile["categories"], rng)
            item = catalog.pick(rng, category)
        elif state == "add_to_cart":
            carted = item
        elif state in ("checkout", "purchase", "apply_coupon"):
            item = carted if carted >= 0 else item
        elif state in ("search", "login", "logout"):
            item = -1
        events.append(_Event(t, state, item, device, profile["country"]))
        t += DWELL_S[state] * profile["pace"] * pace * rng.lognormal(0, 0.9)
    return events


def _anomaly_type(rng: np.random.Generator, params: GeneratorParams):
    if rng.random() >= params.anomaly_rate:
        return None
    names = list(params.anomalies)
    weights = np.array([params.anomalies[n].weight for n in names], dtype=float)
    if weights.sum() <= 0:
        return None
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _anomalous_spans(kind, rng, catalog, profile, params: GeneratorParams, index: int, horizon: float) -> list[_Span]:
    s = params.anomalies[kind].subtlety
    if kind == "click_farm":
        farm = int(rng.integers(params.farm_count))
        replays = [_Span(kind, _click_farm(rng, catalog, params, farm, s, horizon)) for _ in range(int(rng.integers(1, 4)))]
        return _without_overlaps(replays)
    if kind == "account_takeover":
        return [_Span(kind, _account_takeover(rng, catalog, profile, s, horizon))]
    make = {
        "scraping_bot": _scraping_bot,
        "card_testing": _card_testing,
        "cart_abuse": _cart_abuse,
        "velocity_burst": _velocity_burst,
    }[kind]
    spans = []
    for _ in range(int(rng.integers(1, 3))):
        start = float(rng.uniform(0, horizon - 6 * 3600))
        spans.append(_Span(kind, make(rng, catalog, profile, s, start)))
    return _without_overlaps(spans)


def _without_overlaps(spans: list[_Span]) -> list[_Span]:
    spans = sorted(spans, key=lambda sp: sp.events[0].t)
    kept: list[_Span] = []
    for span in spans:
        if not kept or span.events[0].t > kept[-1].events[-1].t + SESSION_GAP_S:
            kept.append(span)
    return kept


def _scraping_bot(rng, catalog: Catalog, profile, s: float, t: float) -> list[_Event]:
    """Fast, regular requests that enumerate a category's items in order; no purchases."""
    n = max(20, int(rng.integers(80, 300) * (1 - 0.7 * s)))
    category = int(rng.integers(catalog.categories))
    first = int(rng.integers(catalog.per_category))
    gap, jitter = 1.0 + 6.0 * s, 0.05 + 0.4 * s
    device = "desktop"
    events = []
    for k in range(n):
        item = category * catalog.per_category + (first + k) % catalog.per_category
        kind = "search" if rng.random() < 0.03 else "view"
        events.append(_Event(t, kind, -1 if kind == "search" else item, device, profile["country"]))
        t += gap * max(0.2, 1 + rng.normal(0, jitter))
    return events


def _card_testing(rng, catalog: Catalog, profile, s: float, t: float) -> list[_Event]:
    """Many quick purchases of the cheapest items, each with a tiny amount."""
    repeats = max(3, int(rng.integers(8, 25) * (1 - 0.6 * s)))
    device = str(rng.choice(DEVICES)) if s < 0.5 else profile["devices"][0]
    events = [_Event(t, "login", -1, device, profile["country"])]
    t += 4
    for _ in range(repeats):
        item = int(rng.choice(catalog.cheap))
        amount = round(float(rng.uniform(0.5, 3.0)), 2)
        for kind in ("view", "add_to_cart", "checkout", "purchase"):
            events.append(_Event(t, kind, item, device, profile["country"], amount if kind != "view" else float("nan")))
            t += (2.0 + 8.0 * s) * rng.lognormal(0, 0.3)
    return events


def _account_takeover(rng, catalog: Catalog, profile, s: float, horizon: float) -> list[_Event]:
    """A new device and country, a login at odd hours, credential changes, then costly purchases."""
    device = str(rng.choice([d for d in DEVICES if d not in profile["devices"]] or DEVICES))
    country = profile["country"] if s >= 0.7 else str(rng.choice([c for c in COUNTRIES if c != profile["country"]]))
    foreign = [c for c in range(catalog.categories) if c not in profile["categories"]][:10]
    day = int(rng.integers(1, max(2, int(horizon // 86400) - 1)))
    t = day * 86400 + ((profile["peak_hour_utc"] + 12) % 24) * 3600.0
    events = []
    for session in range(int(rng.integers(1, 4))):
        events.append(_Event(t, "login", -1, device, country))
        t += 8 * rng.lognormal(0, 0.3)
        for change in ("password_change", "address_change")[: 2 if s < 0.5 else 1]:
            if session == 0:
                events.append(_Event(t, change, -1, device, country))
                t += 20 * rng.lognormal(0, 0.3)
        for _ in range(int(rng.integers(1, 4))):
            item = catalog.pick(rng, int(rng.choice(foreign)))
            price = float(catalog.price[item]) * (4.0 - 2.5 * s)
            for kind in ("view", "add_to_cart", "checkout", "purchase"):
                events.append(_Event(t, kind, item, device, country, price if kind != "view" else float("nan")))
                t += (6 + 20 * s) * rng.lognormal(0, 0.4)
        t += SESSION_GAP_S / 3 + rng.uniform(0, 3600)  # the next session of the same takeover
    return events


def _click_farm(rng, catalog: Catalog, params: GeneratorParams, farm: int, s: float, horizon: float) -> list[_Event]:
    """Replays the farm's shared script (same events, items and rhythm) with a little jitter."""
    script_rng = np.random.default_rng([params.seed, 3, farm])
    length = int(script_rng.integers(8, 20))
    category = int(script_rng.choice(catalog.categories, p=catalog.category_p))
    script = []
    for k in range(length):
        kind = "search" if k == 0 else str(script_rng.choice(["view", "view", "view", "add_to_cart"]))
        item = -1 if kind == "search" else catalog.pick(script_rng, category)
        script.append((kind, item, float(script_rng.uniform(3, 15))))
    device = str(script_rng.choice(DEVICES))
    country = str(script_rng.choice(COUNTRIES))
    day_window = float(script_rng.uniform(0, horizon - 2 * 86400))  # farms run their campaign in a window
    t = day_window + float(rng.uniform(0, 86400))
    events = []
    for kind, item, gap in script:
        events.append(_Event(t, kind, item, device, country))
        t += gap * max(0.1, 1 + rng.normal(0, 0.02 + 0.3 * s))
    return events


def _cart_abuse(rng, catalog: Catalog, profile, s: float, t: float) -> list[_Event]:
    """Cycles of add, remove and coupon attempts, with checkouts that never become purchases."""
    cycles = max(3, int(rng.integers(6, 20) * (1 - 0.6 * s)))
    device = profile["devices"][0]
    category = _uniform_pick(profile["categories"], rng)
    events = []
    for _ in range(cycles):
        item = catalog.pick(rng, category)
        steps = ["view", "add_to_cart", "apply_coupon", "apply_coupon", "remove_from_cart"]
        if rng.random() < 0.4:
            steps[-1] = "checkout"
        for kind in steps:
            events.append(_Event(t, kind, item, device, profile["country"]))
            t += (3 + 10 * s) * rng.lognormal(0, 0.5)
    return events


def _velocity_burst(rng, catalog: Catalog, profile, s: float, t: float) -> list[_Event]:
    """Ordinary-looking shopping at many times the user's pace, for a long stretch."""
    events: list[_Event] = []
    target = max(30, int(rng.integers(60, 180) * (1 - 0.6 * s)))
    while len(events) < target:
        session = _normal_session(rng, catalog, profile, t, pace=0.06 + 0.3 * s)
        events.extend(session)
        t = session[-1].t + 2.0
    return events[:target]


# -- many users, as pandas frames (what the Spark job maps over) -------------------------------


def generate_frames(indices: Iterator[int], params: GeneratorParams) -> pd.DataFrame:
    """Raw CSV lines and label rows for the given users; `kind` says which is which."""
    catalog = catalog_for(params.seed, params.items, params.categories)
    lines: list[str] = []
    line_types: list = []
    labels: list[tuple] = []
    for index in indices:
        events, spans, _ = generate_user(int(index), params)
        user = f"u{int(index):08d}"
        tagged: list[tuple[_Event, str | None]] = [(e, None) for e in events]
        tagged += [(e, sp.anomaly_type) for sp in spans for e in sp.events]
        tagged = [(e, a) for e, a in tagged if e.t < params.days * 86400.0]
        user_lines = _csv_lines(user, [e for e, _ in tagged], catalog, params)
        lines.extend(user_lines)
        line_types.extend(a for _, a in tagged)
        for span in spans:
            inside = [e.t for e in span.events if e.t < params.days * 86400.0]
            if inside:
                labels.append((user, span.anomaly_type, _iso(params, min(inside)), _iso(params, max(inside))))
        if params.malformed_rate > 0:
            bad = _malformed(np.random.default_rng([params.seed, 4, int(index)]), user_lines, params.malformed_rate)
            lines.extend(bad)
            line_types.extend(["malformed"] * len(bad))
    frame = pd.DataFrame({"kind": "event", "line": lines, "anomaly_type": line_types, "user_id": None, "start": None, "end": None})
    label_frame = pd.DataFrame(labels, columns=["user_id", "anomaly_type", "start", "end"]).assign(kind="label", line=None)
    return pd.concat([frame, label_frame[frame.columns]], ignore_index=True)


def _csv_lines(user: str, events: list[_Event], catalog: Catalog, params: GeneratorParams) -> list[str]:
    if not events:
        return []
    millis = ((params.start_epoch_s + np.array([e.t for e in events])) * 1000).astype("int64")
    stamps = np.datetime_as_string(millis.astype("datetime64[ms]"), unit="ms")
    out = []
    for stamp, e in zip(stamps, events):
        if e.item >= 0:
            price = e.price if e.price == e.price else catalog.price[e.item]
            item, category, amount = catalog.item_id(e.item), f"c{catalog.category_of(e.item):03d}", f"{price:.2f}"
        else:
            item = category = amount = ""
        out.append(f"{stamp}Z,{user},{e.event_type},{item},{category},{amount},{e.device},{e.country}")
    return out


def _malformed(rng: np.random.Generator, lines: list[str], rate: float) -> list[str]:
    """Corrupted copies of some lines, for exercising quarantine (the originals stay intact)."""
    bad = []
    for line in lines:
        if rng.random() >= rate:
            continue
        fields = line.split(",")
        how = MALFORMATIONS[int(rng.integers(len(MALFORMATIONS)))]
        if how == "truncated":
            fields = fields[: int(rng.integers(1, 5))]
        elif how == "bad_time":
            fields[0] = "not-a-time"
        elif how == "no_user":
            fields[1] = ""
        elif how == "negative_price":
            fields[5] = "-1.00"
        else:
            fields[0] = "1990-01-01T00:00:00.000Z"
        bad.append(",".join(fields))
    return bad


def _iso(params: GeneratorParams, t: float) -> str:
    stamp = np.datetime64(int((params.start_epoch_s + t) * 1000), "ms")
    return f"{np.datetime_as_string(stamp, unit='ms')}Z"


def _uniform_pick(options, rng: np.random.Generator) -> int:
    return int(options[int(rng.random() * len(options))])


def _draw(cdf: list[float], rng: np.random.Generator) -> int:
    """An index drawn with the probabilities whose cumulative sums are `cdf`."""
    return min(bisect.bisect_right(cdf, rng.random() * cdf[-1]), len(cdf) - 1)


def _zipf(n: int, a: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** a
    return weights / weights.sum()
