"""What a person watching sees, with the runner in this process (no Ray): a line when each run
starts and ends, and in between a plain tqdm bar per run, or a line per evaluation without
bars."""

from scale_lth.lottery.job import Job
from scale_lth.progress import ConsoleProgress, plain_bar
from scale_lth.results import RunKey
from tests.runs import runner


def test_in_process_each_run_has_a_bar_that_reaches_its_steps(smoke_config, capsys):
    config = smoke_config("pruning.levels=1", "baselines.branches=[reinit]")
    runner(config, observers=[ConsoleProgress(plain_bar)]).execute(Job.lottery(config))
    out, err = capsys.readouterr()
    for key in (RunKey(0, 0), RunKey(0, 1), RunKey(0, 1, "reinit")):
        assert f"[{key}] training at" in out and f"[{key}] done:" in out
        assert f"{key.run_id} acc" in err and "40/40" in err  # tqdm draws on stderr
    assert " step 20 of 40" not in out  # the bar, not a line per evaluation


def test_without_bars_each_evaluation_is_a_line(smoke_config, capsys):
    config = smoke_config("pruning.levels=0")
    runner(config, observers=[ConsoleProgress()]).execute(Job.lottery(config))
    out, err = capsys.readouterr()
    assert "[replicate 0, level 0, main] step 20 of 40: val acc" in out
    assert "it/s" not in err
