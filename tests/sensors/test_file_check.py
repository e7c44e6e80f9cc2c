"""The built-in file check (Airflow's FileSensor, recursive, plus a marker file) and its command line."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from kubedag.core.sensors import check_argv, poke_command
from kubedag.http.checks import file_check
from kubedag.sensors.program import main

from ._helpers import sensor


def touch(path: pathlib.Path, text: str = "x") -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def run_check(capsys, *argv: str) -> tuple[int, str, str]:
    """``python -m kubedag.sensors ARGV`` in process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_match_is_not_met(tmp_path, capsys):
    code, out, _ = run_check(capsys, "file", f"--path={tmp_path}/*.csv")
    assert code == 75
    assert out == f"no file matches {tmp_path}/*.csv\n"


def test_a_matching_file_is_met_and_listed(tmp_path, capsys):
    touch(tmp_path / "a.csv")
    touch(tmp_path / "b.csv")
    code, out, _ = run_check(capsys, "file", f"--path={tmp_path}/*.csv")
    assert code == 0
    assert out == f"found 2: {tmp_path}/a.csv, {tmp_path}/b.csv\n"


def test_double_star_matches_any_depth(tmp_path):
    touch(tmp_path / "in" / "x" / "y" / "deep.csv")
    assert file_check(f"{tmp_path}/in/**/*.csv").met
    assert not file_check(f"{tmp_path}/in/*.csv").met


def test_a_directory_counts_only_if_it_holds_a_file(tmp_path):
    # Airflow's FileSensor: a matched directory counts when os.walk finds a file anywhere beneath it.
    (tmp_path / "day" / "empty" / "sub").mkdir(parents=True)
    assert not file_check(f"{tmp_path}/day").met
    touch(tmp_path / "day" / "empty" / "sub" / "part-0")
    assert file_check(f"{tmp_path}/day").met


def test_marker_required_in_every_folder_holding_a_match(tmp_path):
    for shop in (1, 2):
        touch(tmp_path / f"shop_{shop}" / "2026-11-01" / "data-1.csv")
    glob = f"{tmp_path}/shop_*/2026-11-01/data-*.csv"
    result = file_check(glob, "_SUCCESS")
    assert result.code == 75
    assert "_SUCCESS is missing in 2 of 2 folder(s)" in result.message
    touch(tmp_path / "shop_1" / "2026-11-01" / "_SUCCESS")
    result = file_check(glob, "_SUCCESS")
    assert result.code == 75
    assert result.message.endswith(f"missing in 1 of 2 folder(s): {tmp_path}/shop_2/2026-11-01")
    touch(tmp_path / "shop_2" / "2026-11-01" / "_SUCCESS")
    assert file_check(glob, "_SUCCESS").met


def test_the_marker_itself_is_not_data(tmp_path):
    touch(tmp_path / "out" / "_SUCCESS")
    assert file_check(f"{tmp_path}/out/*", "_SUCCESS").code == 75  # only the marker matches
    assert file_check(f"{tmp_path}/out", "_SUCCESS").code == 75  # a directory holding only the marker
    touch(tmp_path / "out" / "part-0")
    assert file_check(f"{tmp_path}/out/*", "_SUCCESS").met
    assert file_check(f"{tmp_path}/out", "_SUCCESS").met  # a matched directory holds its own marker


def test_a_matched_directory_needs_the_marker_inside_it(tmp_path):
    touch(tmp_path / "out" / "part-0")
    touch(tmp_path / "_SUCCESS")  # beside it, not in it
    assert file_check(f"{tmp_path}/out", "_SUCCESS").code == 75


def test_relative_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    touch(tmp_path / "data" / "x.csv")
    monkeypatch.chdir(tmp_path)
    assert file_check("data/*.csv").message == "found 1: data/x.csv"
    touch(tmp_path / "y.csv")
    touch(tmp_path / "_SUCCESS")
    assert file_check("*.csv", "_SUCCESS").message == "found 1: y.csv (_SUCCESS in 1 folder(s))"


@pytest.mark.parametrize("marker", ["", "a/_SUCCESS", ".."])
def test_a_marker_that_is_not_a_file_name_is_an_error(tmp_path, capsys, marker):
    code, out, err = run_check(capsys, "file", f"--path={tmp_path}/*", f"--marker={marker}")
    assert (code, out) == (1, "")
    assert "--marker" in err


def test_an_empty_path_is_an_error(capsys):
    code, _, err = run_check(capsys, "file", "--path=")
    assert code == 1 and "--path" in err


def test_usage_errors_exit_2(capsys):
    for argv in (["file"], ["file", "--path=x", "--nope"], ["ftp"], []):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "usage: python -m kubedag.sensors" in capsys.readouterr().err


def test_check_argv_renders_the_templated_fields():
    spec = sensor(file={"path": "in/{{ ds }}/*.csv", "marker": "{{ params.marker }}"})
    fields = []

    def render(template: str, field: str) -> str:
        fields.append(field)
        return template.replace("{{ ds }}", "2026-11-01").replace("{{ params.marker }}", "_SUCCESS")

    argv = check_argv(spec, render, "python")
    assert argv == ["python", "-m", "kubedag.sensors", "file", "--path=in/2026-11-01/*.csv", "--marker=_SUCCESS"]
    assert fields == ["sensor.file.path", "sensor.file.marker"]


def test_a_command_or_external_sensor_has_no_check_argv():
    with pytest.raises(ValueError, match="command sensor"):
        check_argv(sensor(), lambda t, f: t, "python")
    with pytest.raises(ValueError, match="externalTask sensor"):
        check_argv(sensor(externalTask={"dag": "other"}), lambda t, f: t, "python")


def test_the_program_runs_as_a_module_under_the_poke_wrapper(tmp_path):
    # End to end as a local poke-mode sensor runs it: sh wrapper -> python -m kubedag.sensors file.
    touch(tmp_path / "-odd dir $x" / "data.csv")
    spec = sensor(pokeInterval=0, timeout=0, file={"path": str(tmp_path / "-odd dir $x" / "*.csv")})
    argv = poke_command(check_argv(spec, lambda t, f: t, sys.executable), spec)
    env = {"PYTHONPATH": str(pathlib.Path(__file__).parents[2] / "controller"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"found 1: {tmp_path}/-odd dir $x/data.csv\n"
    spec = sensor(pokeInterval=0, timeout=0, file={"path": str(tmp_path / "*.missing")})
    result = subprocess.run(poke_command(check_argv(spec, lambda t, f: t, sys.executable), spec),
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 75
    assert "timed out" in result.stderr
