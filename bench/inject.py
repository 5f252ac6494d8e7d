"""Scripted sessions injected into a real clickstream: a labeled test set that is not our generator.

usage: python bench/inject.py --source ../shared/data/taobao_userbehavior_815users.csv --out DIR [--seed 11]

Reads the Taobao UserBehavior slice (no header: user_id,item_id,category_id,behavior_type,timestamp;
behaviours pv, cart, fav, buy) and writes DIR/events.csv (the real rows verbatim, then the injected
ones, same format) and DIR/labels.csv (one row per injected session: user_id, anomaly_type, start,
end). Items and categories of injected events are drawn from the real rows, so no detector can
spot them by an unknown id. The recipe (docs/detectors.md, "The injected clickstream"):

- seven scripts, `PER_SCRIPT` sessions each (84 in all, about 0.6 % of the slice's 14,000 sessions):
  scraper (40-120 views of distinct items, 1-3 s apart), cart_stuffer (15-40 add-to-carts with no
  view, 2-6 s apart), buy_burst (8-20 purchases, 3-8 s apart), fav_spam (20-60 favourites, 1-4 s
  apart), replay (one fixed 10-event script played by every replay account with the same timing),
  hijack (a real user's account: 5-12 cart-then-buy pairs in categories the user never visited,
  2-5 s apart), and session_replay (a real session of 5-15 events played again by a script, same
  behaviours and items, exactly 1 s apart: three times per real session, twice by one new account
  in sessions hours apart and once by another);
- new accounts get fresh numeric ids above the slice's largest; hijacks go into real users at a time
  at least two hours away from any of their own events, so they form a session of their own;
- start times are uniform over the slice's collection window (2017-11-25 to 2017-12-03, Beijing);
- the same seed gives the same files.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]
WINDOW = (1511539200, 1512316800)  # 2017-11-25 00:00 to 2017-12-04 00:00, Beijing time, as Unix seconds
PER_SCRIPT = 12
SEPARATION_S = 2 * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="the Taobao UserBehavior CSV slice")
    parser.add_argument("--out", required=True, help="folder for events.csv and labels.csv")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    events, labels = inject(Path(args.source), Path(args.out), args.seed)
    print(f"inject: {events:,} events in {labels} scripted sessions written to {args.out}")


def inject(source: Path, out: Path, seed: int = 11) -> tuple[int, int]:
    """Write out/events.csv and out/labels.csv; return (injected events, injected sessions)."""
    real = pd.read_csv(source, header=None, names=COLUMNS, dtype=str)
    real_rows = real.dropna()  # the slice's last line is cut mid-record: it stays in events.csv, unused here
    real_rows = real_rows.assign(timestamp=real_rows["timestamp"].astype(np.int64))
    rng = np.random.default_rng(seed)
    scripts = Scripts(real_rows, rng)
    rows: list[list] = []
    labels: list[dict] = []
    for name in ("scraper", "cart_stuffer", "buy_burst", "fav_spam", "replay", "hijack", "session_replay"):
        for _ in range(PER_SCRIPT):
            user, session = getattr(scripts, name)()
            rows += [[user, item, category, behaviour, ts] for ts, behaviour, item, category in session]
            times = [ts for ts, *_ in session]
            labels.append({"user_id": user, "anomaly_type": name, "start": _iso(min(times)), "end": _iso(max(times))})
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "events.csv")
    with open(out / "events.csv", "a", newline="") as target:
        if not _ends_with_newline(out / "events.csv"):
            target.write("\n")
        csv.writer(target).writerows(rows)
    pd.DataFrame(labels).to_csv(out / "labels.csv", index=False)
    return len(rows), len(labels)


class Scripts:
    """Each method returns (user_id, [(timestamp, behaviour, item_id, category_id), ...])."""

    def __init__(self, real: pd.DataFrame, rng: np.random.Generator):
        self.real, self.rng = real, rng
        self.items = real[["item_id", "category_id"]].drop_duplicates().to_numpy()
        self.replays: list[tuple[str, list]] = []  # session_replay's sessions still to hand out
        self.next_user = int(real["user_id"].astype(np.int64).max()) + 1
        self.replay_script = [
            (offset, behaviour, *self._item())
            for offset, behaviour in zip(
                np.cumsum(rng.integers(2, 9, size=10)), ["pv", "pv", "cart", "pv", "pv", "fav", "cart", "pv", "buy", "buy"]
            )
        ]

    def scraper(self):
        return self._new_user(), self._burst("pv", self.rng.integers(40, 121), (1, 3))

    def cart_stuffer(self):
        return self._new_user(), self._burst("cart", self.rng.integers(15, 41), (2, 6))

    def buy_burst(self):
        return self._new_user(), self._burst("buy", self.rng.integers(8, 21), (3, 8))

    def fav_spam(self):
        return self._new_user(), self._burst("fav", self.rng.integers(20, 61), (1, 4))

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
            for behaviour in ("cart", "buy"):
                session.append((ts, behaviour, item, category))
                ts += int(self.rng.integers(2, 6))
        return user, session

    def _real_session(self, shortest: int, longest: int) -> list[tuple]:
        """A random real user's session (events under 30 minutes apart) of `shortest` to `longest` events, in order."""
        users = self.real["user_id"].unique()
        while True:
            own = self.real[self.real["user_id"] == users[self.rng.integers(len(users))]].sort_values("timestamp", kind="stable")
            starts = np.flatnonzero(np.diff(own["timestamp"].to_numpy(), prepend=-(10**9)) > 1800)
            for first, end in zip(starts, [*starts[1:], len(own)]):
                if shortest <= end - first <= longest:
                    return list(own.iloc[first:end][["timestamp", "behavior_type", "item_id", "category_id"]].itertuples(index=False))

    def _burst(self, behaviour: str, n: int, gap_s: tuple[int, int]):
        ts, session = self._start(), []
        for _ in range(n):
            session.append((ts, behaviour, *self._item()))
            ts += int(self.rng.integers(gap_s[0], gap_s[1] + 1))
        return session

    def _item(self) -> tuple[str, str]:
        item, category = self.items[self.rng.integers(len(self.items))]
        return item, category

    def _start(self) -> int:
        return int(self.rng.integers(WINDOW[0], WINDOW[1] - 3600))

    def _new_user(self) -> str:
        self.next_user += 1
        return str(self.next_user)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def _iso(unix_s: int) -> str:
    return pd.Timestamp(unix_s, unit="s", tz="UTC").isoformat()


if __name__ == "__main__":
    main()
