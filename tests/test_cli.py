import json

from muppet_hf.cli import main


def test_tasks_list_json(capsys):
    assert main(["tasks", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "family", "head", "source"} <= set(rows[0])
    by_name = {row["name"]: row for row in rows}
    assert by_name["mnli"]["head"] == "mnli" and by_name["mnli"]["source"] == "nyu-mll/glue (mnli)"
    assert by_name["hellaswag"]["head"] == "multiple_choice"
    assert by_name["squad"]["head"] == "span"


def test_tasks_list_table_and_suite_filter(capsys):
    assert main(["tasks", "list", "--suite", "paper"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["name", "family", "head"]
    assert "47 tasks" in out


def test_tasks_show(capsys):
    assert main(["tasks", "show", "copa"]) == 0
    out = capsys.readouterr().out
    assert "name: copa" in out and "head_type: multiple_choice" in out


def test_unknown_task_is_a_clear_error(capsys):
    assert main(["tasks", "show", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
