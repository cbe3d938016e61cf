"""`scale-lth plan`: the cost of an experiment's run graph, against a schedule worked out by
hand, and the paper's ResNet-50 curve planned without its data."""

import json

import pytest

from scale_lth.cli import main
from tests.conftest import CONFIGS

SMOKE = str(CONFIGS / "smoke.yaml")


def test_a_small_graph_costs_what_a_hand_schedule_gives(digits_dir, tmp_path, capsys):
    """smoke.yaml: 40 steps of 60 images, rewind point 10; 2 levels x 3 baselines. At 100
    images/s a 40-step run takes 24 s, a run rewound to step 10 (ticket, random pruning) 18 s.
    Two slots, each taking the first ready run (the longest chain, the trunk, then the job's
    order): A: level 0 0-24, ticket 1 24-42, ticket 2 42-60, snip 1 60-84, random 2 84-102;
    B: reinit 1 24-48, random 1 48-66, reinit 2 66-90, snip 2 90-114."""
    overrides = [f"data.path={digits_dir}", f"output_root={tmp_path}", "scaling.num_workers=1"]
    arguments = ["plan", SMOKE, *overrides, "--images-per-second", "100", "--json"]
    assert main([*arguments, "--gpus", "1", "2", "1000"]) == 0
    plan = json.loads(capsys.readouterr().out)
    steps = 40 + 2 * (30 + 40 + 30 + 40)
    assert plan["runs"] == 9 and plan["tickets"] == 3 and plan["finished"] == 0
    assert plan["gpu_hours"] == pytest.approx(steps * 60 / 100 / 3600)
    assert plan["wall_hours"] == {
        "1": pytest.approx(steps * 0.6 / 3600),
        "2": pytest.approx(114 / 3600),
        "1000": pytest.approx((24 + 18 + 24) / 3600),  # level 0, ticket 1, a 40-step run
    }
    assert plan["critical_path_hours"] == pytest.approx(66 / 3600)
    assert plan["critical_path_runs"] == 3


def test_ddp_runs_use_a_group_of_gpus_each(digits_dir, tmp_path, capsys):
    """With 2 workers per run a run takes half the time on twice the GPUs: the same GPU-hours,
    and 3 GPUs hold one run slot."""
    overrides = [f"data.path={digits_dir}", f"output_root={tmp_path}", "scaling.num_workers=2"]
    arguments = ["plan", SMOKE, *overrides, "--images-per-second", "100", "--json"]
    assert main([*arguments, "--gpus", "1", "3"]) == 0
    plan = json.loads(capsys.readouterr().out)
    steps = 40 + 2 * (30 + 40 + 30 + 40)  # 30 images per worker, the same 60 per step
    assert plan["gpu_hours"] == pytest.approx(steps * 60 / 100 / 3600)
    assert plan["wall_hours"] == {"1": None, "3": pytest.approx(steps * 0.3 / 3600)}


def test_the_paper_curve_is_planned_without_its_data(tmp_path, capsys):
    config = str(CONFIGS / "imagenet_resnet50.yaml")
    arguments = [f"data_root={tmp_path / 'data'}", f"output_root={tmp_path / 'results'}"]
    assert main(["plan", config, *arguments, "--images-per-second", "3000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "GPU-hours at 3,000 images/s per GPU" in lines[0]
    assert "51 runs to train (11 tickets, 40 baselines" in lines[0]
    rows = {line.split()[0]: line for line in lines[3:6]}
    assert set(rows) == {"8", "64", "256"} and all(" h (" in row for row in rows.values())
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


def auto_rewinding_plan(capsys, config: str, overrides: list[str]) -> dict:
    """The plan of ``config`` with ``rewinding.step: auto`` over two candidates (two dense
    instability paths at level 0)."""
    automatic = ["rewinding.step=auto", "rewinding.candidates=[0it,20it]", *overrides]
    arguments = ["plan", config, *automatic, "--images-per-second", "100", "--json"]
    assert main([*arguments, "--gpus", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_path_costs_its_points_on_each_subsampled_split(digits_dir, tmp_path, capsys):
    """The digits split 1257 train / 180 val / 360 test. With 3 points on 100 training and 50
    of each evaluation split's examples a path evaluates 3 x 200 images, a third of the work of
    training on as many; 400 training examples make it 3 x 500."""
    overrides = [f"data.path={digits_dir}", f"output_root={tmp_path}", "scaling.num_workers=1"]
    overrides += ["instability.points=3", "instability.eval_examples=50"]
    small, large = (
        auto_rewinding_plan(capsys, SMOKE, [*overrides, f"instability.train_examples={count}"])
        for count in (100, 400)
    )
    assert (small["paths"], small["path_images"], large["path_images"]) == (2, 600, 1500)
    extra_seconds = 2 * (1500 - 600) / 3 / 100
    assert large["gpu_hours"] - small["gpu_hours"] == pytest.approx(extra_seconds / 3600)


def test_an_imagenet_path_stays_under_two_percent_of_a_run(tmp_path, capsys):
    """By default 30 points on 55,000 training images and 10,000 of val (the 10,000 held out)
    and of test (ImageNet's 50,000 val images)."""
    config = str(CONFIGS / "imagenet_resnet50.yaml")
    arguments = [f"data_root={tmp_path / 'data'}", f"output_root={tmp_path / 'results'}"]
    plan = auto_rewinding_plan(capsys, config, arguments)
    assert plan["path_images"] == 30 * (55_000 + 10_000 + 10_000)
    assert plan["dense_run_images"] == 90 * ((1_281_167 - 10_000) // 1024) * 1024  # whole batches
    assert plan["path_images"] / plan["dense_run_images"] < 0.02
