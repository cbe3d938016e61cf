"""The MLflow tag saying where a run's ranks trained: ranks of one host and address together,
as ranges, and never longer than MLflow takes."""

from scale_lth.tracking.writer import TAG_LENGTH, ranks_tag


def ranks(*places: tuple[str, str]) -> list[dict]:
    return [{"rank": i, "host": h, "address": a} for i, (h, a) in enumerate(places)]


def test_ranks_of_one_place_are_grouped_as_ranges():
    spread = ranks(("a", "10.0.0.1"), ("b", "10.0.0.2"), ("a", "10.0.0.1"), ("a", "10.0.0.1"))
    assert ranks_tag(spread) == "a 10.0.0.1: 0,2-3; b 10.0.0.2: 1"
    assert ranks_tag(ranks(("vm", ""))) == "vm: 0"


def test_a_huge_cluster_is_cut_to_what_a_tag_holds():
    huge = ranks(*[(f"node-{i:05d}", f"10.{i // 256 % 256}.{i % 256}.1") for i in range(4096)])
    text = ranks_tag(huge)
    assert len(text) == TAG_LENGTH and text.endswith("...")
