# Databricks notebook source
# MAGIC %md
# MAGIC # Explore events and sessions
# MAGIC What the lake holds: events by type and day, what was quarantined and why, and what sessions look like.
# MAGIC Widgets default to the local demo lake (`make demo`); on a cluster, point them at yours.

# COMMAND ----------

from pyspark.sql import functions as F

from seqrisk.notebook import Notebook
from seqrisk.spark import get_spark
from seqrisk.lake.lake import Lake

nb = Notebook(globals(), conf="conf/local.yaml", tables_root="demo/lake", model_dir="demo/models")
config = nb.config()
spark = get_spark(config.spark)
lake = Lake.open(spark, config.tables)
events = lake.read("events")
sessions = lake.read("sessions")

# COMMAND ----------

# MAGIC %md Events per type, and per day.

# COMMAND ----------

nb.show(events.groupBy("event_type").count().orderBy(F.desc("count")))
nb.show(events.groupBy("event_date").agg(F.count("*").alias("events"), F.countDistinct("user_id").alias("users")).orderBy("event_date"))

# COMMAND ----------

# MAGIC %md Quarantined records, by reason (every rejected record is kept verbatim with its reason).

# COMMAND ----------

nb.show(lake.read("quarantine").groupBy("reason").count().orderBy(F.desc("count")))

# COMMAND ----------

# MAGIC %md Sessions: sizes and timings, and one long session's events in order.

# COMMAND ----------

nb.show(sessions.select("n_events", "duration_s", "events_per_minute", "distinct_items", "gap_median_s", "gap_cv").summary("min", "50%", "90%", "max"))
longest = sessions.orderBy(F.desc("n_events"), "session_id").limit(1)
nb.show(longest.select("session_id", "user_id", F.posexplode(F.arrays_zip("event_types", "gaps_s")).alias("step", "event")).select("session_id", "step", "event.*"))
