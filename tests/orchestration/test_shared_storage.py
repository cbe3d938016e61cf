"""What a node sees of the experiment's folders, compared with what the driver sees (the probe
itself across namespaced nodes with a private mount: tests/launch/test_multinode.py)."""

import shutil

from scale_lth.orchestration.shared_storage import difference, look


def test_a_node_seeing_the_same_folders_passes(smoke_config, digits_dir, tmp_path):
    config = smoke_config()
    probe = tmp_path / "probe"
    probe.write_text("1234")
    copy = tmp_path / "copy"
    shutil.copytree(digits_dir, copy)  # the same data at another place (each node's own copy)
    assert (
        difference(config, look(str(probe), str(digits_dir)), look(str(probe), str(copy))) is None
    )


def test_a_node_without_the_probe_is_named_with_the_results_folder(
    smoke_config, digits_dir, tmp_path
):
    config = smoke_config()
    probe = tmp_path / "probe"
    probe.write_text("1234")
    expected = look(str(probe), str(digits_dir))
    elsewhere = look(str(tmp_path / "not-there"), str(digits_dir))
    assert elsewhere.probe is None
    problem = difference(config, expected, elsewhere)
    assert problem.startswith(f"does not see the results folder output_root {tmp_path / 'results'}")


def test_a_node_with_other_data_is_named_with_the_data_folder(smoke_config, digits_dir, tmp_path):
    config = smoke_config()
    probe = tmp_path / "probe"
    probe.write_text("1234")
    other = tmp_path / "other"
    shutil.copytree(digits_dir, other)
    with open(other / "val.beton", "ab") as grown:
        grown.write(b"\0")
    (other / "test.beton").unlink()
    problem = difference(config, look(str(probe), str(digits_dir)), look(str(probe), str(other)))
    assert problem == (
        f"sees other data in data.path {digits_dir} than the driver "
        "(test.beton, val.beton missing or different)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "info.json" in difference(
        config, look(str(probe), str(digits_dir)), look(str(probe), str(empty))
    )
