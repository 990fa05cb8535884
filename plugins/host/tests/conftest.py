import sys
import textwrap
from pathlib import Path

import pytest

HOST_DIR = Path(__file__).resolve().parent.parent
PLUGINS_DIR = HOST_DIR.parent
sys.path.insert(0, str(HOST_DIR))

HYDRATION = PLUGINS_DIR / "hydration" / "v1.py"
SLEEP = PLUGINS_DIR / "sleep-winddown" / "v1.py"

GOOD_HEADER = '''
name = "probe"
description = "A test plugin."
input_schema = {"type": "object", "properties": {"text": {"type": "string"}}}
required_secrets = []
examples = [{"input": {"text": "hi"}, "expect": {"echo": "hi"}}]
'''


@pytest.fixture
def write_module(tmp_path):
    """Write a plugin module; `body` is appended to a valid header unless `header=False`."""

    def write(body: str, header: bool = True, name: str = "v1.py") -> Path:
        path = tmp_path / name
        text = (GOOD_HEADER if header else "") + textwrap.dedent(body)
        path.write_text(text)
        return path

    return write
