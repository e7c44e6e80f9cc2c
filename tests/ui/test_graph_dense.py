"""The graph view of a dense DAG in headless Chromium: 30 tasks in five layers, each task of a layer downstream
of every task of the layer before, several with a trigger rule other than all_success. Each rule is written once,
in its task's box, and no text of the graph overlaps another. Screenshot: ``memory-graph-dense.png``."""

from __future__ import annotations

from fastapi import FastAPI

from kubedag.ui import ui_router
from tests.ui.conftest import Server, artifacts_dir
from tests.ui.memory import MemoryCatalog, Rbac, Services, TokenAuth, chain_dag

RULES = ("all_done", "one_failed", "none_failed_min_one_success", "all_failed", "one_success", "none_skipped")


def dense_dag():
    tasks = []
    for layer in range(5):
        for i in range(6):
            task = {"name": f"l{layer}_task_{i}", "command": ["true"]}
            if layer:
                task["dependsOn"] = [f"l{layer - 1}_task_{j}" for j in range(6)]
                if i % 2 == 0:
                    task["triggerRule"] = RULES[(layer + i) % len(RULES)]
            tasks.append(task)
    return chain_dag("dense", tasks=tasks)


def test_a_dense_graph_shows_each_trigger_rule_once_without_overlapping_text(page):
    catalog = MemoryCatalog()
    dag = dense_dag()
    catalog.add_dag(dag)
    catalog.add_run(dag, 0, {t: "success" for t in dag.tasks}, state="success")
    app = FastAPI()
    app.include_router(ui_router(Services(catalog, TokenAuth({"t": "alice"}), Rbac({("alice", "*", "*")}))))
    ruled = {t: str(task.trigger_rule) for t, task in dag.tasks.items() if str(task.trigger_rule) != "all_success"}
    with Server(app) as server:
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.set_extra_http_headers({"Authorization": "Bearer t"})
        page.goto(f"{server.url}/ui/dags/dense/graph")
        page.wait_for_selector("#graph .node")
        assert page.locator("#graph .node").count() == 30
        shown = {page.locator("#graph .node").nth(i).get_attribute("data-task"): text
                 for i in range(30) if (text := page.locator("#graph .node").nth(i).locator("text.rule")
                                                 .all_text_contents())}
        assert shown == {t: [f"rule: {r}"] for t, r in ruled.items()}
        boxes = page.evaluate("""() => Array.from(document.querySelectorAll('#graph .node')).map(n => {
            const r = n.getBoundingClientRect(); return [n.dataset.task, r.left, r.top, r.right, r.bottom]; })""")
        texts = page.evaluate("""() => Array.from(document.querySelectorAll('#graph text')).map(t => {
            const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.top, r.right, r.bottom]; })""")
        overlaps = [(a[0], b[0]) for i, a in enumerate(boxes + texts) for b in (boxes + texts)[i + 1:]
                    if a in boxes and b in boxes and intersect(a, b)]
        overlaps += [(a[0], b[0]) for i, a in enumerate(texts) for b in texts[i + 1:] if intersect(a, b)]
        assert overlaps == []
        assert page.locator("#graph path.edge.ruled").count() == 6 * len(ruled)  # six upstream edges each
        page.add_style_tag(content=".graph-wrap { max-height: none; overflow: visible; }")  # the whole graph
        page.locator("#graph").screenshot(path=artifacts_dir() / "memory-graph-dense.png")


def intersect(a: list, b: list) -> bool:
    return a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
