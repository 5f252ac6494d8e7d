# Databricks notebook source
# MAGIC %md
# MAGIC # Investigate a risky user
# MAGIC A user's risk row, their sessions from riskiest down, the events that surprised the model (with what it
# MAGIC expected there), and the reasons. Leave `user_id` empty to take the riskiest user of the latest run.

# COMMAND ----------

from pyspark.sql import functions as F

from seqrisk.notebook import Notebook
from seqrisk.spark import get_spark
from seqrisk.lake.lake import Lake

nb = Notebook(globals(), conf="conf/local.yaml", tables_root="demo/lake", model_dir="demo/models", user_id="")
config = nb.config()
spark = get_spark(config.spark)
lake = Lake.open(spark, config.tables)
users = lake.read("user_risk")
latest = users.agg(F.max("as_of_date")).first()[0]
users = users.filter(F.col("as_of_date") == latest)
user_id = nb["user_id"] or users.orderBy(F.desc("max_risk_pct"), F.desc("high_risk_sessions"), "user_id").first()["user_id"]
print(f"user {user_id}, as of {latest}")
nb.show(users.filter(F.col("user_id") == user_id))

# COMMAND ----------

# MAGIC %md The user's sessions, riskiest first: level, action and reasons.

# COMMAND ----------

risk = lake.read("session_risk").filter(F.col("user_id") == user_id)
nb.show(risk.orderBy(F.desc("risk_pct")).select("session_id", "session_start", "n_events", "risk_pct", "risk_level", "action", "reasons",
                                                "sequence_pct", "feature_pct", "count_pct", "ngram_pct", "replay_pct"))

# COMMAND ----------

# MAGIC %md The riskiest session: where the model was most surprised, and what it expected instead.

# COMMAND ----------

riskiest = risk.orderBy(F.desc("risk_pct"), "session_id").first()
nb.show(risk.filter(F.col("session_id") == riskiest["session_id"]).select(F.explode("top_events").alias("e")).select("e.*"))
session = lake.read("sessions").filter(F.col("session_id") == riskiest["session_id"])
nb.show(session.select(F.posexplode(F.arrays_zip("event_types", "gaps_s", "item_ids")).alias("position", "event")).select("position", "event.*"), rows=60)
