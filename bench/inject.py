"""Scripted sessions injected into a real clickstream: a labeled test set that is not our generator.

usage: python bench/inject.py --source FILE --out DIR [--format taobao|trivago] [--seed 11]

Reads a real clickstream slice and writes DIR/events.csv or DIR/events.parquet (the real rows
verbatim, then the injected ones, in the source's own format) and DIR/labels.csv (one row per
injected session: user_id, anomaly_type, start, end). Items of injected events are drawn from the
real rows, so no detector can spot them by an unknown id. The recipes (docs/detectors.md: "Quality
on three data sets" and "Scripted replays" for Taobao's, "Item revisits, and a second injected
clickstream" for trivago's), `PER_SCRIPT` sessions per script:

- `taobao`, the Taobao UserBehavior slice (CSV, no header: user_id,item_id,category_id,
  behavior_type,timestamp; behaviours pv, cart, fav, buy), seven scripts (84 sessions, about 0.6 %
  of the slice's 14,000): scraper (40-120 views of distinct items, 1-3 s apart), cart_stuffer (15-40
  add-to-carts with no view, 2-6 s apart), buy_burst (8-20 purchases, 3-8 s apart), fav_spam (20-60
  favourites, 1-4 s apart), replay (one fixed 10-event script played by every replay account with
  the same timing), hijack (a real user's account: 5-12 cart-then-buy pairs in categories the user
  never visited, 2-5 s apart), and session_replay (a real session of 5-15 events played again by a
  script, same behaviours and items, exactly 1 s apart: three times per real session, twice by one
  new account in sessions hours apart and once by another);
- `trivago`, the trivago RecSys 2019 slice (parquet, sessions given, a hotel search's actions),
  six scripts (72 sessions, about 0.9 % of its 7,612): image_scraper (40-120 image views of hotels,
  1-3 s apart), deal_harvester (15-40 deal views, 2-6 s apart), clickout_burst (8-20 clickouts to
  booking sites, 3-8 s apart: the paid action), rating_scraper (20-60 rating views, 1-4 s apart),
  replay and session_replay as above (trivago's users are anonymous visitors: no account to hijack);
- new users get fresh ids; hijacks go into real users at a time at least two hours away from any of
  their own events, so they form a session of their own; start times are uniform over the slice's
  collection window;
- the same seed gives the same files.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PER_SCRIPT = 12
SEPARATION_S = 2 * 3600
GAP_S = 1800  # a source without session ids: a session ends after 30 minutes without an event

Event = tuple[int, str, str, str]  # (timestamp, behaviour, item_id, category_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the real clickstream slice")
    parser.add_argument("--out", required=True, help="folder for the events and labels.csv")
    parser.add_argument("--format", choices=sorted(SOURCES), default="taobao", help="what the source is (default taobao)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    events, labels = inject(Path(args.source), Path(args.out), args.seed, args.format)
    print(f"inject: {events:,} events in {labels} scripted sessions written to {args.out}")


def inject(source: Path, out: Path, seed: int = 11, fmt: str = "taobao") -> tuple[int, int]:
    """Write the events (`SOURCES[fmt].events_file` in `out`) and out/labels.csv; return (injected events, injected sessions)."""
    recipe = SOURCES[fmt]
    real = recipe.read(source)
    scripts = Scripts(real, recipe, np.random.default_rng(seed))
    sessions: list[tuple[str, list[Event]]] = []
    labels: list[dict] = []
    for name in recipe.scripts:
        for _ in range(PER_SCRIPT):
            user, session = scripts.play(name)
            sessions.append((user, session))
            times = [ts for ts, *_ in session]
            labels.append({"user_id": user, "anomaly_type": name, "start": _iso(min(times)), "end": _iso(max(times))})
    out.mkdir(parents=True, exist_ok=True)
    recipe.write(source, out / recipe.events_file, sessions)
    pd.DataFrame(labels).to_csv(out / "labels.csv", index=False)
    return sum(len(session) for _, session in sessions), len(labels)


@dataclass(frozen=True)
class Recipe:
    """One source's format and scripts.

    `read` gives the real rows as user_id, item_id, category_id, behavior_type, timestamp (Unix s),
    session (the source's session id, or None to cut a user's events at 30-minute gaps) and item
    (whether scripts may draw the row's item); `write` copies the source and appends the injected
    sessions in its format.
    """

    window: tuple[int, int]  # the slice's collection window, Unix seconds
    bursts: dict[str, tuple[str, tuple[int, int], tuple[int, int]]]  # script -> (behaviour, events, seconds apart)
    replay: tuple[str, ...]  # the fixed replay script's 10 behaviours
    hijack: tuple[str, str] | None  # (add to cart, buy) behaviours where accounts buy; None: no hijack script
    events_file: str
    read: Callable[[Path], pd.DataFrame]
    write: Callable[[Path, Path, list[tuple[str, list[Event]]]], None]

    @property
    def scripts(self) -> list[str]:
        return [*self.bursts, "replay", *(["hijack"] if self.hijack else []), "session_replay"]


class Scripts:
    """Each script returns (user_id, [(timestamp, behaviour, item_id, category_id), ...])."""

    def __init__(self, real: pd.DataFrame, recipe: Recipe, rng: np.random.Generator):
        self.real, self.recipe, self.rng = real, recipe, rng
        self.items = real.loc[real["item"], ["item_id", "category_id"]].drop_duplicates().to_numpy()
        self.replays: list[tuple[str, list[Event]]] = []  # session_replay's sessions still to hand out
        numeric = pd.to_numeric(real["user_id"], errors="coerce")
        self.numeric_ids = bool(numeric.notna().all())  # fresh ids: numbers above the largest, else SCRIPT000001, ...
        self.next_user = int(numeric.max()) + 1 if self.numeric_ids else 0
        self.replay_script = [
            (offset, behaviour, *self._item()) for offset, behaviour in zip(np.cumsum(rng.integers(2, 9, size=10)), recipe.replay)
        ]

    def play(self, name: str) -> tuple[str, list[Event]]:
        if name in self.recipe.bursts:
            behaviour, events, gap_s = self.recipe.bursts[name]
            return self._new_user(), self._burst(behaviour, self.rng.integers(events[0], events[1] + 1), gap_s)
        return getattr(self, name)()

    def replay(self):
        start = self._start()
        return self._new_user(), [
            (start + int(offset), behaviour, item, category) for offset, behaviour, item, category in self.replay_script
        ]

    def session_replay(self):
        if not self.replays:
            played = [(behaviour, item, category) for _, behaviour, item, category in self._real_session(5, 15)]
            first, second = self._new_user(), self._new_user()
            start = self._start()
            for user, at in ((first, start), (first, start + SEPARATION_S + 3600), (second, self._start())):
                self.replays.append((user, [(at + i, *event) for i, event in enumerate(played)]))
        return self.replays.pop(0)

    def hijack(self):
        assert self.recipe.hijack is not None  # only recipes with accounts that buy list this script
        users = self.real["user_id"].unique()
        while True:
            user = users[self.rng.integers(len(users))]
            own = self.real[self.real["user_id"] == user]
            start = self._start()
            if np.abs(own["timestamp"].to_numpy() - start).min() >= SEPARATION_S:
                break
        visited = set(own["category_id"])
        foreign = self.items[~np.isin(self.items[:, 1], list(visited))]
        session, ts = [], start
        for _ in range(self.rng.integers(5, 13)):
            item, category = foreign[self.rng.integers(len(foreign))]
            for behaviour in self.recipe.hijack:
                session.append((ts, behaviour, item, category))
                ts += int(self.rng.integers(2, 6))
        return user, session

    def _real_session(self, shortest: int, longest: int) -> list[tuple]:
        """A random real user's session of `shortest` to `longest` events, in order."""
        users = self.real["user_id"].unique()
        while True:
            own = self.real[self.real["user_id"] == users[self.rng.integers(len(users))]]
            if own["session"].isna().all():  # cut at 30-minute gaps
                own = own.sort_values("timestamp", kind="stable")
                starts = np.flatnonzero(np.diff(own["timestamp"].to_numpy(), prepend=-(10**9)) > GAP_S)
            else:
                own = own.sort_values(["session", "timestamp"], kind="stable")
                starts = np.flatnonzero(own["session"].ne(own["session"].shift()).to_numpy())
            for first, end in zip(starts, [*starts[1:], len(own)]):
                if shortest <= end - first <= longest:
                    return list(own.iloc[first:end][["timestamp", "behavior_type", "item_id", "category_id"]].itertuples(index=False))

    def _burst(self, behaviour: str, n: int, gap_s: tuple[int, int]) -> list[Event]:
        ts, session = self._start(), []
        for _ in range(n):
            session.append((ts, behaviour, *self._item()))
            ts += int(self.rng.integers(gap_s[0], gap_s[1] + 1))
        return session

    def _item(self) -> tuple[str, str]:
        item, category = self.items[self.rng.integers(len(self.items))]
        return item, category

    def _start(self) -> int:
        return int(self.rng.integers(self.recipe.window[0], self.recipe.window[1] - 3600))

    def _new_user(self) -> str:
        self.next_user += 1
        return str(self.next_user) if self.numeric_ids else f"SCRIPT{self.next_user:06d}"


def _read_taobao(source: Path) -> pd.DataFrame:
    real = pd.read_csv(source, header=None, names=TAOBAO_COLUMNS, dtype=str)
    real = real.dropna()  # the slice's last line is cut mid-record: it stays in the events file, unused here
    return real.assign(timestamp=real["timestamp"].astype(np.int64), session=None, item=True)


def _write_taobao(source: Path, target: Path, sessions: list[tuple[str, list[Event]]]) -> None:
    shutil.copyfile(source, target)
    with open(target, "a", newline="") as out:
        if not _ends_with_newline(target):
            out.write("\n")
        csv.writer(out).writerows(
            [user, item, category, behaviour, ts] for user, session in sessions for ts, behaviour, item, category in session
        )


def _read_trivago(source: Path) -> pd.DataFrame:
    real = pd.read_parquet(source, columns=["user_id", "session_id", "timestamp", "action_type", "reference"])
    return pd.DataFrame(
        {
            "user_id": real["user_id"],
            "item_id": real["reference"],
            "category_id": "",  # no categories: no hijack script
            "behavior_type": real["action_type"],
            "timestamp": real["timestamp"].astype(np.int64),
            "session": real["session_id"],
            "item": real["action_type"].isin([IMAGE, INFO, DEALS, RATING, CLICKOUT]) & real["reference"].str.isdigit().fillna(False),
        }
    )


def _write_trivago(source: Path, target: Path, sessions: list[tuple[str, list[Event]]]) -> None:
    """The real rows, then each injected session with an id of its own; its context columns empty (no detector reads them)."""
    real = pd.read_parquet(source)
    rows = [
        {"user_id": user, "session_id": f"script{number:07d}", "timestamp": ts, "step": step, "action_type": behaviour, "reference": item}
        for number, (user, session) in enumerate(sessions, start=1)
        for step, (ts, behaviour, item, _) in enumerate(session, start=1)
    ]
    injected = pd.DataFrame(rows).reindex(columns=real.columns).astype({"timestamp": np.int64, "step": np.int64})
    pd.concat([real, injected], ignore_index=True).to_parquet(target, index=False)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


TAOBAO_COLUMNS = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
IMAGE, INFO, DEALS, RATING = (f"interaction item {what}" for what in ("image", "info", "deals", "rating"))  # trivago's actions
CLICKOUT = "clickout item"
SOURCES = {
    "taobao": Recipe(
        window=(1511539200, 1512316800),  # 2017-11-25 00:00 to 2017-12-04 00:00, Beijing time
        bursts={
            "scraper": ("pv", (40, 120), (1, 3)),
            "cart_stuffer": ("cart", (15, 40), (2, 6)),
            "buy_burst": ("buy", (8, 20), (3, 8)),
            "fav_spam": ("fav", (20, 60), (1, 4)),
        },
        replay=("pv", "pv", "cart", "pv", "pv", "fav", "cart", "pv", "buy", "buy"),
        hijack=("cart", "buy"),
        events_file="events.csv",
        read=_read_taobao,
        write=_write_taobao,
    ),
    "trivago": Recipe(
        window=(1541548800, 1541721600),  # 2018-11-07 00:00 to 2018-11-09 00:00 UTC
        bursts={
            "image_scraper": (IMAGE, (40, 120), (1, 3)),
            "deal_harvester": (DEALS, (15, 40), (2, 6)),
            "clickout_burst": (CLICKOUT, (8, 20), (3, 8)),
            "rating_scraper": (RATING, (20, 60), (1, 4)),
        },
        replay=(IMAGE, IMAGE, INFO, IMAGE, DEALS, RATING, IMAGE, CLICKOUT, IMAGE, CLICKOUT),
        hijack=None,
        events_file="events.parquet",
        read=_read_trivago,
        write=_write_trivago,
    ),
}


def _iso(unix_s: int) -> str:
    return pd.Timestamp(unix_s, unit="s", tz="UTC").isoformat()


if __name__ == "__main__":
    main()
