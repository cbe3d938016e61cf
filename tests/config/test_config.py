import re
from pathlib import Path

import pytest

from scale_lth.config import Config, ConfigError, Duration, load, load_saved

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_defaults_name_from_file_and_types(tmp_path):
    config = load(write(tmp_path, "training:\n  lr: 1e-3\n  duration: 50ep\n"))
    assert config.name == "exp"
    assert config.training.lr == pytest.approx(1e-3)
    assert config.training.duration == Duration(50, "ep")
    assert config.model == Config().model


def test_overrides_apply_after_file(tmp_path):
    path = write(tmp_path, "seed: 1\ntraining:\n  lr: 0.5\n")
    config = load(path, ["training.lr=0.25", "seed=7", "training.milestones=[30ep, 60ep]"])
    assert config.seed == 7
    assert config.training.lr == 0.25
    assert config.training.milestones == [Duration(30, "ep"), Duration(60, "ep")]


def test_nullable_and_mapping_values():
    config = load(None, ["pruning.output_fraction=0.1", "pruning.layer_fractions={'fc*': 0.2}"])
    assert config.pruning.output_fraction == 0.1
    assert config.pruning.layer_fractions == {"fc*": 0.2}
    assert load(None, ["pruning.output_fraction=null"]).pruning.output_fraction is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90ep", 90 * 7),
        ("5000it", 5000),
        (" 3 it ", 3),
    ],
)
def test_duration_to_iterations(text, expected):
    assert Duration.parse(text).iterations(7) == expected


@pytest.mark.parametrize("text", ["12xx", "ep", "1.5ep", "-3it", "", "10"])
def test_bad_durations_are_rejected(text):
    with pytest.raises(ValueError):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("yaml_text", "fragments"),
    [
        ("training:\n  lrr: 0.1\n", ["unknown key 'training.lrr'", "did you mean 'training.lr'"]),
        ("training:\n  lr: fast\n", ["'training.lr' must be a float", "'fast'"]),
        ("training:\n  duration: 12xx\n", ["'training.duration'", "'90ep' or '5000it'", "12xx"]),
        ("seed: yes\n", ["'seed' must be an int"]),
        ("training: 3\n", ["'training' must be a mapping"]),
        ("baselines:\n  branches: [snap]\n", ["'baselines.branches'", "'snip'"]),
        ("- a\n- b\n", ["top level must be a mapping"]),
        ("training: {lr: [\n", ["not valid YAML"]),
    ],
)
def test_bad_files_fail_with_one_line_naming_file_and_key(tmp_path, yaml_text, fragments):
    path = write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_bad_override_names_the_override():
    with pytest.raises(ConfigError, match=r"^override 'training\.lr=abc': 'training\.lr'"):
        load(None, ["training.lr=abc"])
    with pytest.raises(ConfigError, match="key.sub=value"):
        load(None, ["training.lr"])


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load(tmp_path / "nope.yaml")


def test_hash_ignores_defaults_and_where_things_run(tmp_path):
    base = load(None)
    assert load(None, ["training.lr=0.1"]).hash == base.hash  # 0.1 is the default
    assert load(None, ["scaling.num_workers=8", "tracking.uri=http://x", "replicates=5"]).hash == (
        base.hash
    )
    assert load(None, ["output_root=/elsewhere", "data.path=/fast/disk"]).hash == base.hash
    assert load(None, ["training.lr=0.2"]).hash != base.hash
    assert load(None, ["seed=1"]).hash != base.hash


def test_hash_is_independent_of_spelling(tmp_path):
    spelled = load(write(tmp_path, "training:\n  lr: 1.0e-3\n  duration: ' 50ep'\n"))
    other = load(None, ["training.lr=0.001", "training.duration=50ep"])
    assert spelled.hash == other.hash


def test_experiment_dir_is_name_and_hash():
    config = load(None, ["name=demo", "output_root=out"])
    assert config.experiment_dir == Path("out") / f"demo-{config.hash}"


def test_pinned_hashes():
    """Changing these means every existing result folder gets a new name: do it on purpose."""
    assert load(None).hash == "44136fa355"
    assert load(None, ["training.lr=0.4", "training.duration=90ep"]).hash == "d433fbd405"
    assert load(None, ["rewinding.step=6ep", "pruning.scope=layer"]).hash == "40a29f0b92"
    # the instability section, named "stability" when this hash was pinned, keeps its folders
    assert load(None, ["instability.points=5", "instability.threshold=0.05"]).hash == "2594546a13"


def test_a_saved_config_of_an_earlier_version_loads_under_the_current_names(tmp_path):
    saved = tmp_path / "config.yaml"
    saved.write_text(
        "name: old\npruning.strategy: magnitude\nstability.points: 5\nstability.threshold: 0.05\n"
    )
    config = load_saved(saved)
    assert (config.instability.points, config.instability.threshold) == (5, 0.05)
    assert config.hash == "2594546a13"


def test_the_renamed_section_is_refused_in_one_line_naming_the_new_one(tmp_path):
    written = tmp_path / "old.yaml"
    written.write_text("stability:\n  points: 5\n")
    for source, overrides in ((written, []), (None, ["stability.threshold=0.1"])):
        with pytest.raises(
            ConfigError, match="the section 'stability' is now called 'instability'"
        ):
            load(source, overrides)


def test_how_far_an_experiment_goes_leaves_its_hash():
    """`pruning.levels` (like `replicates`) says how far to go: raising it keeps the folder."""
    for levels in (0, 3, 15, 40):
        assert load(None, [f"pruning.levels={levels}"]).hash == "44136fa355"
    layer = load(None, ["rewinding.step=6ep", "pruning.scope=layer", "pruning.levels=10"])
    assert layer.hash == "40a29f0b92"


def test_a_baselines_own_settings_name_its_runs_not_the_experiment():
    base = load(None)
    snip4 = load(None, ["baselines.snip_batches=4"])
    assert snip4.hash == base.hash == "44136fa355"  # the trunk keeps its folder
    assert base.run_branch("snip") == "snip"
    assert snip4.run_branch("snip") == "snip-738cc1"  # pinned: SNIP's runs with 4 minibatches
    assert load(None, ["baselines.snip_batches=2"]).run_branch("snip") not in (
        "snip",
        "snip-738cc1",
    )
    assert snip4.run_branch("reinit") == "reinit" and snip4.run_branch("random_prune") == (
        "random_prune"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pruning.fraction=1", "'pruning.fraction' must be in (0, 1), got 1.0"),
        ("pruning.fraction=0", "'pruning.fraction' must be in (0, 1), got 0.0"),
        ("pruning.output_fraction=1.2", "'pruning.output_fraction' must be in (0, 1), got 1.2"),
        ("pruning.layer_fractions={'a*': -0.1}", "'pruning.layer_fractions' must be in (0, 1)"),
        ("model.dropout=1", "'model.dropout' must be in [0, 1), got 1.0"),
        ("training.lr=-1", "'training.lr' must be > 0, got -1.0"),
        ("data.batch_size=0", "'data.batch_size' must be >= 1, got 0"),
        ("baselines.snip_batches=0", "'baselines.snip_batches' must be >= 1, got 0"),
        ("replicates=0", "'replicates' must be >= 1, got 0"),
    ],
)
def test_values_outside_their_range_are_refused(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(None, [override])
    assert load(None, ["pruning.output_fraction=null"]).pruning.output_fraction is None


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load(path)
    assert config.name == path.stem
    assert len(config.hash) == 10


def test_yaml_is_loaded_safely(tmp_path):
    """A YAML tag that would run code is refused as invalid YAML; nothing runs."""
    marker = tmp_path / "ran"
    path = write(tmp_path, f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(path)
    assert not marker.exists()
