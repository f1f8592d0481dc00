from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.prompts import load_prompts, sample


def test_project_suite_has_ids_categories_and_checkable_content() -> None:
    items = load_prompts({"suite": "project"})
    assert len(items) == 12
    assert len({p.id for p in items}) == 12
    assert {"color", "counting", "composition"} <= {p.category for p in items}


def test_parti_loader_and_sampling(shared_prompts: Path) -> None:
    path = shared_prompts / "PartiPrompts.tsv"
    everything = load_prompts({"suite": "parti", "path": str(path)})
    assert len(everything) > 1500
    assert all(p.suite == "parti" and p.text for p in everything)
    a = load_prompts({"suite": "parti", "path": str(path), "n": 20, "seed": 3})
    b = load_prompts({"suite": "parti", "path": str(path), "n": 20, "seed": 3})
    c = load_prompts({"suite": "parti", "path": str(path), "n": 20, "seed": 4})
    assert [p.id for p in a] == [p.id for p in b] != [p.id for p in c]
    per = load_prompts({"suite": "parti", "path": str(path), "per_category": 2})
    counts: dict[str, int] = {}
    for p in per:
        counts[p.category] = counts.get(p.category, 0) + 1
    assert set(counts.values()) == {2}
    assert set(counts) == {p.category for p in everything}


def test_geneval_loader(shared_prompts: Path) -> None:
    items = load_prompts(
        {"suite": "geneval", "path": str(shared_prompts / "geneval_evaluation_metadata.jsonl")}
    )
    assert len(items) > 500
    assert {"single_object", "counting", "colors"} <= {p.category for p in items}
    only = load_prompts(
        {
            "suite": "geneval",
            "path": str(shared_prompts / "geneval_evaluation_metadata.jsonl"),
            "categories": ["counting"],
        }
    )
    assert only and all(p.category == "counting" for p in only)


def test_errors_name_the_key_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"prompts.path.*set prompts.path"):
        load_prompts({"suite": "parti"})
    with pytest.raises(ConfigError, match="no such file"):
        load_prompts({"suite": "parti", "path": str(tmp_path / "missing.tsv")})
    with pytest.raises(ConfigError, match=r"prompts\.suite"):
        load_prompts({"suite": "coco"})
    with pytest.raises(ConfigError, match=r"prompts\.n"):
        load_prompts({"suite": "project", "n": 0})


def test_sample_keeps_dataset_order() -> None:
    items = load_prompts({"suite": "project"})
    picked = sample(items, n=5, seed=1)
    positions = [items.index(p) for p in picked]
    assert positions == sorted(positions)


def test_parti_keeps_literal_quotes(shared_prompts: Path) -> None:
    # The TSV is not CSV-quoted: a prompt that starts with a quote keeps it, verbatim.
    path = shared_prompts / "PartiPrompts.tsv"
    raw = [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:] if line]
    items = load_prompts({"suite": "parti", "path": str(path)})
    giggle = [p.text for p in items if "G I G G L E" in p.text]
    assert giggle == [
        '"G I G G L E" painted in thick colorful lettering as graffiti on a faded red brick wall '
        "with a splotch of exploding white paint."
    ]
    assert [p.text for p in items] == [t for t in raw if t]
