"""Compare the generator's distributions with the real slices in ../shared/data (DuckDB, raw files).

usage: python bench/generator_vs_real.py --generated DIR   (DIR: the output of `seqrisk generate`)
Every source is cut into sessions the same way (a 30-minute inactivity gap), then per source:
events per session, gaps within sessions, sessions per user per active day, and funnel rates.
Prints a Markdown table (docs/generator.md holds the last one).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Each source as (user_id, ts, kind), with kind in view / cart / purchase / other.
SOURCES = {
    "taobao": f"""
        select column0::varchar as user_id, to_timestamp(column4::bigint) as ts,
               case column3 when 'pv' then 'view' when 'cart' then 'cart' when 'buy' then 'purchase' else 'other' end as kind
        from read_csv('{DATA}/taobao_userbehavior_815users.csv', header=false, ignore_errors=true)
        where column4 between 1511539200 and 1512316800""",
    "rees46": f"""
        select user_id::varchar as user_id, event_time::timestamp as ts,
               case event_type when 'view' then 'view' when 'cart' then 'cart' when 'purchase' then 'purchase' else 'other' end as kind
        from read_csv('{DATA}/rees46_2019oct_head17k.csv', header=true, ignore_errors=true)""",
    "trivago": f"""
        select user_id, to_timestamp("timestamp") as ts,
               case when action_type like 'interaction item%' then 'view' when action_type = 'clickout item' then 'purchase' else 'other' end as kind
        from read_parquet('{DATA}/trivago_sessions_100k.parquet')""",
}
GENERATED = """
    select column1 as user_id, column0::timestamp as ts,
           case column2 when 'view' then 'view' when 'add_to_cart' then 'cart' when 'purchase' then 'purchase' else 'other' end as kind
    from read_csv('{path}/events/part-*', header=false, all_varchar=true)"""

STATS = """
with e as ({source}),
g as (
  select *, epoch(ts) - epoch(lag(ts) over (partition by user_id order by ts)) as gap from e
),
s as (
  select *, sum(case when gap is null or gap > 1800 then 1 else 0 end)
              over (partition by user_id order by ts rows between unbounded preceding and current row) as sid
  from g
),
sessions as (
  select user_id, sid, count(*) as n, bool_or(kind = 'view') as v, bool_or(kind = 'cart') as c,
         bool_or(kind = 'purchase') as p, min(ts)::date as day
  from s group by user_id, sid
),
per_user_day as (select user_id, day, count(*) as k from sessions group by user_id, day)
select
  (select count(*) from e) as events,
  (select count(*) from sessions) as sessions,
  (select median(n) from sessions) as median_len,
  (select quantile_cont(n, 0.9) from sessions) as p90_len,
  (select avg(n) from sessions) as mean_len,
  (select median(gap) from s where gap <= 1800) as median_gap,
  (select quantile_cont(gap, 0.9) from s where gap <= 1800) as p90_gap,
  (select avg(k) from per_user_day) as sessions_per_active_day,
  (select avg(case when c then 1 else 0 end) filter (where v) from sessions) as view_to_cart,
  (select avg(case when p then 1 else 0 end) filter (where c) from sessions) as cart_to_purchase,
  (select avg(case when p then 1 else 0 end) from sessions) as purchase_rate
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", required=True, help="folder written by `seqrisk generate`")
    args = parser.parse_args()
    sources = dict(SOURCES, generated=GENERATED.format(path=args.generated))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    print(
        "| source | events | sessions | events/session median (p90, mean) | gap s median (p90) | sessions per active user-day | view→cart | cart→purchase | sessions with purchase |"
    )
    print("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for name, source in sources.items():
        r = con.sql(STATS.format(source=source)).fetchone()
        cart = "n/a" if name == "trivago" else f"{r[8]:.1%}"
        to_purchase = "n/a" if name == "trivago" else f"{r[9]:.1%}"
        print(
            f"| {name} | {r[0]:,} | {r[1]:,} | {r[2]:.0f} ({r[3]:.0f}, {r[4]:.1f}) | {r[5]:.0f} ({r[6]:.0f}) | {r[7]:.2f} "
            f"| {cart} | {to_purchase} | {r[10]:.1%} |"
        )


if __name__ == "__main__":
    main()
