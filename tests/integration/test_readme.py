"""The README's notebook example runs as written, in a fresh Python process started in a project folder."""

import re
import shutil
import subprocess
import sys

from helpers import REPO


def test_the_readme_notebook_example_ingests_as_written(tmp_path):
    readme = (REPO / "README.md").read_text()
    (example,) = [block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "run_ingest" in block]
    shutil.copytree(REPO / "conf", tmp_path / "conf")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "events.csv").write_text("1,100,7,pv,1511658000\n1,101,7,cart,1511658060\n2,100,7,pv,1511661600\n")
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"records read\s+3\b", done.stdout), done.stdout
    assert (tmp_path / "lake" / "events" / "_delta_log").is_dir()
