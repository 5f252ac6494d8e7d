"""What the notebooks share: widgets that fall back to local defaults, and a display that works anywhere.

On Databricks, `dbutils` and `display` are globals of the notebook; pass `globals()` and the same
notebook runs there (values from its widgets) and locally (the defaults).
"""

from __future__ import annotations

from typing import Any

from seqrisk.config import Config, load_config


class Notebook:
    def __init__(self, namespace: dict[str, Any], **defaults: str):
        self._dbutils = namespace.get("dbutils")
        self._display = namespace.get("display")
        self.values: dict[str, str] = {}
        for name, default in defaults.items():
            if self._dbutils is not None:
                self._dbutils.widgets.text(name, default)
                self.values[name] = self._dbutils.widgets.get(name)
            else:
                self.values[name] = default

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def config(self, *overrides: str) -> Config:
        """The config of the `conf` widget, with `tables.root` and `model.dir` from their widgets."""
        sets = [f"tables.root={self['tables_root']}", f"model.dir={self['model_dir']}", *overrides]
        return load_config(self["conf"], sets)

    def show(self, df, rows: int = 20) -> None:
        """Databricks' display when there is one, else the first rows as text."""
        if self._display is not None:
            self._display(df)
        else:
            import pandas as pd

            frame = df if isinstance(df, pd.DataFrame) else df.limit(rows).toPandas()
            with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 60):
                print(frame.head(rows).to_string())
