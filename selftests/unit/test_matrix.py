"""The node-to-node matrix and its renderings."""

from __future__ import annotations

from netdoctor.plugin.matrix import FAIL, LOSS, OK, SKIP, Cell, build


def test_cell_verdicts() -> None:
    assert Cell("a", "b", 3, 3).verdict == OK
    assert Cell("a", "b", 2, 3).verdict == LOSS
    assert Cell("a", "b", 0, 3).verdict == FAIL
    assert Cell("a", "b", 0, 0).verdict == SKIP
    assert Cell("a", "b", 0, 3, expected=False).verdict == OK
    assert Cell("a", "b", 1, 3, expected=False).verdict == FAIL


def test_text_names_failing_pairs() -> None:
    m = build("pod-to-pod ping", [("worker-1", "worker-2", 0, 3), ("worker-2", "worker-1", 3, 3),
                                  ("worker-1", "worker-1", 3, 3), ("worker-2", "worker-2", 2, 3)])
    text = m.text()
    assert "worker-1->worker-2 (0/3)" in text
    assert "worker-2->worker-2 (2/3)" in text
    assert "worker-2->worker-1" not in text.split("failing:")[1]
    assert [c.dst for c in m.failing] == ["worker-2", "worker-2"]


def test_html_marks_cells_and_escapes() -> None:
    m = build("dns <all>", [("n1", "n2", 0, 1)], nodes=["n1", "n2"])
    out = m.html()
    assert 'class="nd-fail"' in out
    assert "dns &lt;all&gt;" in out
    assert out.count("<td></td>") == 3
