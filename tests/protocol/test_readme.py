"""The README's Python example runs as printed, and .ci/run runs the README's test command."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(example.strip().splitlines()) <= 16
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["ids"].shape == (2, 5)
    assert "feature" not in capsys.readouterr().err


def test_ci_runs_the_readme_test_command():
    text = (ROOT / "README.md").read_text()
    test_command = re.search(r"Run the tests:\n\n```bash\n(.*?)\n```", text).group(1)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_your_data_section_and_the_cli_help_name_the_same_schema():
    from likeable.protocol.datasets import CANONICAL, SCHEMA_HELP

    text = (ROOT / "README.md").read_text()
    section = re.search(r"## Your data\n(.*?)\n## ", text, re.S).group(1)
    for word in (*CANONICAL, ".jsonl.gz", ".parquet", ".csv", "--columns", "--labels", "DataFrame",
                 "datasets.Dataset", "HH-RLHF"):
        assert word in section, word
        assert word in SCHEMA_HELP, word
