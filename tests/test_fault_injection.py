"""Bad input and lost files, injected on purpose: each is refused by name or repaired, and never
turns into a wrong table or a raw traceback.

Snakemake runs here are dry runs, or a tiny failing workflow, in temporary copies of the
repository, so results/ and tables/ of the working tree are never touched."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import core.io
import protocols
import tables.render
from core.config import load_scale
from core.errors import AnnotationError, CheckpointError, ConfigError, MetricsError, MissingInputError, SuiteError
from datasets.manifests.manifest import main as manifest_main
from datasets.sources import fixtures_extra
from datasets.sources.fingerprint import refresh, source_fingerprint
from datasets.sources.fixtures import make_kinetics400
from datasets.sources.layout import check_root
from datasets.sources.official import parse_kinetics400, parse_ucf101
from datasets.sources.parsers.diving48 import parse_diving48
from datasets.sources.registry import dataset_info
from protocols.cli import protocol_main
from tables.metrics import PROTOCOL_METRICS, read_metrics
from tables.render import main as render_main, render
from tables.runs import COMPUTE_CSV, has_compute_cells, metrics_files, runnable_cells
from tables.schema import SpecError, load_spec
from tests.conftest import assert_same_weights, pretrain_command, repository_copy, run_env, weights
from tests.test_dag import job_counts
from tests.test_render import metrics_json

REPO = Path(__file__).resolve().parents[1]
TABLE1 = REPO / "tables" / "specs" / "maclr_table1.yaml"


# --------------------------------------------------------------------------- helpers


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake's run in `workdir`, its stdout and stderr together in `.stdout`."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)


def write_fake_results(root: Path, spec, scale: str = "smoke") -> list[str]:
    """A valid metrics file for every runnable cell of `spec` under `root`, holding each metric a cell
    asks of it; returns the files' paths relative to `root`, in order."""
    files: dict[str, tuple[str, dict]] = {}
    for run in runnable_cells(spec, scale, f"results/{scale}"):
        if run.path:
            files.setdefault(run.path, (run.protocol, {}))[1][run.metric] = 40.0
    for path, (protocol, values) in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(json.dumps(metrics_json(protocol, scale, **values)))
    return sorted(files)


def spec_with(tmp_path: Path, edit) -> Path:
    """A copy of MaCLR Table 1's spec, changed by `edit(raw_yaml_dict)`."""
    raw = yaml.safe_load(TABLE1.read_text())
    edit(raw)
    path = tmp_path / "maclr_table1.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    return path


# --------------------------------------------------------------------------- 1. a table never outlives its inputs


@pytest.mark.parametrize("spec_path", sorted((REPO / "tables" / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_file_the_renderer_reads_is_an_input_of_the_table_rule(spec_path, tmp_path, monkeypatch):
    """tables/rules.smk's table_inputs takes the metrics files from tables.runs.metrics_files."""
    spec = load_spec(spec_path)
    write_fake_results(tmp_path, spec)
    inputs = metrics_files(spec, "smoke", "results/smoke")
    read = []
    monkeypatch.setattr(tables.render, "read_metrics", lambda path, *a: read.append(path) or read_metrics(path, *a))
    monkeypatch.setattr(tables.render, "read_compute_csv", lambda path: read.append(path) or {})
    render(spec_path, "smoke", "results/smoke", md=tmp_path / "t.md", root=tmp_path)
    expected = {tmp_path / p for p in inputs} | ({tmp_path / COMPUTE_CSV} if has_compute_cells(spec) else set())
    assert set(read) <= expected, sorted(set(map(str, read)) - set(map(str, expected)))
    assert {tmp_path / p for p in inputs} <= set(read)


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    """The repository with MaCLR Table 1 rendered from a fake, complete set of smoke metrics."""
    work = repository_copy(tmp_path_factory.mktemp("repo"))
    for path in work.rglob("*"):  # code and specs older than the results (a newer one would re-run them)
        os.utime(path, (time.time() - 7200,) * 2)
    files = write_fake_results(work, load_spec(TABLE1))
    for path in files:  # metrics files and their folders older than the table
        os.utime(work / path, (time.time() - 3600,) * 2)
        os.utime((work / path).parent, (time.time() - 3600,) * 2)
    for name in ("md", "csv", "png"):
        (work / f"tables/maclr_table1.{name}").write_text("the previous table\n")
    return work, files


def test_a_table_with_all_its_metrics_is_up_to_date(workflow_copy):
    work, _ = workflow_copy
    proc = snakemake(work, "-n", "tables/maclr_table1.md")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Nothing to be done" in proc.stdout


def test_deleting_a_metrics_file_plans_the_table_again(workflow_copy):
    work, files = workflow_copy
    victim = work / files[0]
    saved = victim.read_bytes()
    victim.unlink()
    try:
        proc = snakemake(work, "-n", "tables/maclr_table1.md")
    finally:
        victim.write_bytes(saved)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert job_counts(proc.stdout).get("table") == 1  # (the fake tree has no checkpoints: they are planned too)
    assert f"output: {files[0]}\n" in proc.stdout


# --------------------------------------------------------------------------- 2. spec omissions are schema errors


def test_a_row_without_cells_is_a_schema_error(tmp_path):
    path = spec_with(tmp_path, lambda raw: raw["parts"][0]["rows"][1].pop("cells"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert all(s in str(err.value) for s in (str(path), "part 'a'", "'m_only_k400mini'", "'cells'"))


def test_an_unknown_evaluation_dataset_is_a_schema_error(tmp_path):
    path = spec_with(tmp_path, lambda raw: raw["parts"][1]["value_columns"][0].update(eval="ucf999"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert all(s in str(err.value) for s in (str(path), "part 'b'", "'diff'", "'UCF'", "eval", "'ucf999'"))


def test_a_metric_name_typo_is_a_schema_error_not_a_metrics_file_error(tmp_path):
    path = spec_with(tmp_path, lambda raw: raw["parts"][2]["value_columns"][1].update(metric="top_1"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert all(s in str(err.value) for s in (str(path), "part 'c'", "'maclr'", "'HMDB'", "metric", "'top_1'"))


def test_a_bad_spec_stops_the_workflow_before_any_job_and_keeps_the_table(workflow_copy):
    work, _ = workflow_copy
    spec = work / "tables/specs/maclr_table1.yaml"
    original = spec.read_text()
    spec.write_text(original.replace("metric: top1, eval: hmdb51_split1", "metric: top_1, eval: hmdb51_split1", 1))
    try:
        proc = snakemake(work, "--cores", "1", "tables/maclr_table1.md")
    finally:
        spec.write_text(original)
    assert proc.returncode != 0
    assert "tables/specs/maclr_table1.yaml" in proc.stdout and "'top_1'" in proc.stdout
    assert (work / "tables/maclr_table1.md").read_text() == "the previous table\n"


@pytest.fixture
def rendered(tmp_path, monkeypatch):
    """MaCLR Table 1 rendered from fake metrics under tmp_path; returns (write a metrics file, outputs)."""
    files = write_fake_results(tmp_path, load_spec(TABLE1))
    outputs = {k: tmp_path / f"t.{k}" for k in ("md", "csv", "png")}
    args = ["--spec", str(TABLE1), "--scale", "smoke", "--results", "results/smoke",
            "--md", str(outputs["md"]), "--csv", str(outputs["csv"]), "--plot", str(outputs["png"])]
    monkeypatch.chdir(tmp_path)
    assert render_main(args) == 0
    path = tmp_path / files[0]

    def rerender(**values) -> int:
        path.write_text(json.dumps({**metrics_json("linear"), **values}))
        return render_main(args)

    return rerender, path, outputs


def test_a_failed_render_leaves_the_previous_table_whole(rendered, monkeypatch):
    rerender, _, outputs = rendered
    before = {k: p.read_bytes() for k, p in outputs.items()}
    assert rerender(top1=250.0) == 1
    monkeypatch.setattr(tables.render, "plot", lambda *a: 1 / 0)  # fails after the Markdown is rendered
    with pytest.raises(ZeroDivisionError):
        rerender(top1=12.5)
    assert {k: p.read_bytes() for k, p in outputs.items()} == before
    assert not [p for p in outputs["md"].parent.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- 3. metrics follow their protocol's schema


def test_every_implemented_protocol_has_a_metrics_schema():
    assert set(protocols.IMPLEMENTED) == set(PROTOCOL_METRICS)


@pytest.mark.parametrize("values, named", [
    ({"top1": 250.0}, "'top1'"),
    ({"scale": "full"}, "'scale'"),
    ({"views": "ten"}, "'views'"),
    ({"num_test_videos": 0}, "'num_test_videos'"),
    ({"protocol": "finetune"}, "'protocol'"),
])
def test_bad_metrics_are_refused_naming_the_file_and_key(rendered, capsys, values, named):
    rerender, path, _ = rendered
    assert rerender(**values) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert str(path) in err and named in err


def test_a_metrics_file_without_a_required_key_is_refused(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"top1": 50.0, "scale": "smoke", "protocol": "linear", "views": "10x3"}))
    with pytest.raises(MetricsError, match=r"m\.json: missing key\(s\) num_test_videos, top5"):
        read_metrics(path, "linear", "smoke")


def test_a_bad_metrics_file_stops_the_workflow_before_the_table_job(workflow_copy):
    work, files = workflow_copy
    path = work / files[0]
    original = path.read_text()
    path.write_text(json.dumps(metrics_json("linear", "full")))
    try:
        proc = snakemake(work, "-n", "tables/maclr_table1.md")
    finally:
        path.write_text(original)
    assert proc.returncode != 0 and files[0] in proc.stdout and "'scale'" in proc.stdout


# --------------------------------------------------------------------------- 4. one-line errors


def test_a_non_numeric_metric_is_one_line_naming_file_and_key(rendered, capsys):
    rerender, path, _ = rendered
    assert rerender(top1="n/a") == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(path) in err and "'top1'" in err


def _pickle_with_code(path: Path) -> None:
    torch.save({"encoder": SuiteError("arbitrary object")}, path)


def _truncated(path: Path) -> None:
    core.io.torch_save(path, {"w": torch.ones(64, 64)})
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize("make, reason", [(_pickle_with_code, "not a weights-only checkpoint"),
                                          (_truncated, "truncated or corrupt")])
def test_a_refused_checkpoint_is_a_suite_error_naming_the_file(tmp_path, make, reason):
    path = tmp_path / "checkpoint.pt"
    make(path)
    with pytest.raises(CheckpointError, match=reason) as err:
        core.io.torch_load(path)
    assert str(path) in str(err.value)


def _run_protocol(tmp_path, checkpoint, evaluate=lambda *a: metrics_json("linear")) -> tuple[str, Path]:
    """protocols/cli.py's command line with a stand-in evaluation; returns its exit message and --out."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("video_id,label,split\n")
    out = tmp_path / "metrics.json"
    argv = ["--checkpoint", str(checkpoint), "--manifest", str(manifest), "--root", str(tmp_path), "--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        protocol_main("linear", evaluate, "test", "top1", argv)
    return str(exit_.value.code), out


@pytest.mark.parametrize("make, reason", [(_pickle_with_code, "not a weights-only checkpoint"),
                                          (_truncated, "truncated or corrupt")])
def test_the_protocol_command_line_prints_a_refused_checkpoint_as_one_line(tmp_path, make, reason):
    checkpoint = tmp_path / "checkpoint.pt"
    make(checkpoint)
    message, out = _run_protocol(tmp_path, checkpoint)
    assert message.startswith("error: ") and "\n" not in message
    assert str(checkpoint) in message and reason in message and not out.exists()


def test_the_protocol_command_line_never_writes_metrics_a_table_would_refuse(tmp_path):
    checkpoint = tmp_path / "checkpoint.pt"
    core.io.torch_save(checkpoint, {"encoder": {}, "input": {}, "provenance": {"method": "maclr"}})
    message, out = _run_protocol(tmp_path, checkpoint, lambda *a: metrics_json("linear", top1=250.0))
    assert message.startswith("error: ") and "'top1'" in message and not out.exists()


@pytest.mark.parametrize("scale", ["../scales/smoke", "smoke/../full", "/tmp/smoke", ""])
def test_a_scale_is_a_plain_profile_name(scale):
    with pytest.raises(ConfigError, match="unknown scale"):
        load_scale(scale)


def test_a_scale_path_stops_the_workflow(workflow_copy):
    work, _ = workflow_copy
    proc = snakemake(work, "-n", "tables/maclr_table1.md", "--config", "scale=../scales/smoke")
    assert proc.returncode != 0 and "unknown scale '../scales/smoke'" in proc.stdout
    assert not (work / "scales").exists()


# --------------------------------------------------------------------------- 5. writes


def test_checkpoints_are_byte_reproducible(tmp_path):
    state = {"encoder": {"state_dict": {"w": torch.arange(12.0).reshape(3, 4)}}, "config": {"lr": 0.1}}
    core.io.torch_save(tmp_path / "a.pt", state)
    core.io.torch_save(tmp_path / "b.pt", state)
    first = (tmp_path / "a.pt").read_bytes()
    core.io.torch_save(tmp_path / "a.pt", state)
    assert first == (tmp_path / "b.pt").read_bytes() == (tmp_path / "a.pt").read_bytes()


def test_an_atomic_write_reaches_the_disk_before_its_name(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(core.io, "_fsync", lambda path: events.append(("fsync", Path(path))))
    replace = os.replace
    monkeypatch.setattr(core.io.os, "replace", lambda src, dst: events.append(("replace", Path(dst))) or replace(src, dst))
    core.io.write_text(tmp_path / "x.txt", "x")
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].parent == tmp_path and events[0][1].name.endswith(".tmp")  # the temporary file
    assert events[1][1] == tmp_path / "x.txt" and events[2][1] == tmp_path
    assert (tmp_path / "x.txt").read_text() == "x"


# --------------------------------------------------------------------------- 6. a failing job's log on the terminal


def test_a_failing_jobs_log_reaches_the_terminal(tmp_path):
    """Every rule sends its stderr to its log; the Snakefile's onerror handler (core.failed_logs)
    prints the failing job's log, so a plain `snakemake ...` shows the message. The workflow profile
    config/profiles/default (show-failed-logs) does the same for those who pass it."""
    rule = ('rule fails:\n    output: "out.txt"\n    log: "fails.log"\n'
            '    shell: "(printf \'the-%s-it-failed\' reason >&2; exit 3) 2> {log}"\n')  # the command lacks the message
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "Snakefile").write_text(rule)
    without = snakemake(bare, "--cores", "1", "out.txt")
    assert without.returncode != 0 and "the-reason-it-failed" not in without.stdout
    profile = REPO / "config" / "profiles" / "default"
    with_profile = snakemake(bare, "--cores", "1", "--workflow-profile", str(profile), "out.txt")
    assert with_profile.returncode != 0 and "the-reason-it-failed" in with_profile.stdout
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "Snakefile").write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
                                     "from core.failed_logs import show_failed_logs\n\n" + rule
                                     + "\n\nonerror:\n    show_failed_logs(log)\n")
    handled = snakemake(suite, "--cores", "1", "out.txt")
    assert handled.returncode != 0 and "the-reason-it-failed" in handled.stdout and "fails.log" in handled.stdout


# ---- dataset preparation and the DAG

TINY_FIXTURE = {"frames": 20, "height": 24, "width": 32, "fps": 10, "num_classes": 2}
LOWSHOT = "results/smoke/manifests/ucf101_lowshot_1.csv"  # the UCF101 split-1 manifest and a subset of it
UCF101_FIXTURE = "results/smoke/data/UCF101"
UCF101_FINGERPRINT = "results/smoke/sources/UCF101.json"


def _later_mtime(path: Path) -> None:
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_last_line(path: Path) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


# change of a dataset folder -> the files of the UCF101 fixture whose first it changes (every kind of
# change is held against the fingerprint itself below; these run Snakemake, a few seconds each)
SOURCE_CHANGES = {
    "touched video": (_later_mtime, "UCF-101/*/*.avi"),
    "removed video": (Path.unlink, "UCF-101/*/*.avi"),
    "edited annotation file": (_drop_last_line, "ucfTrainTestlist/testlist01.txt"),
}


@contextlib.contextmanager
def restored_afterwards(*paths: Path):
    """Puts the files back as they were (bytes and mtime) when the block ends."""
    saved = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in paths}
    try:
        yield
    finally:
        for path, (data, mtime) in saved.items():
            path.write_bytes(data)
            os.utime(path, ns=(mtime, mtime))


@pytest.fixture
def small_dataset(tmp_path):
    """A dataset folder: two videos, an annotation file and a hidden marker."""
    root = tmp_path / "data"
    (root / "videos").mkdir(parents=True)
    for name in ("a.avi", "b.avi"):
        (root / "videos" / name).write_bytes(b"video " + name.encode())
    (root / "labels.txt").write_text("a 1\nb 2\n")
    (root / ".fixture.json").write_text("{}")
    return root


@pytest.mark.parametrize("change", [
    lambda root: _later_mtime(root / "videos/a.avi"),
    lambda root: _cut_in_half(root / "videos/a.avi"),
    lambda root: (root / "videos/a.avi").unlink(),
    lambda root: (root / "videos/c.avi").write_bytes(b"new"),
    lambda root: _drop_last_line(root / "labels.txt"),
], ids=["touched", "truncated", "removed", "added", "annotation edited"])
def test_the_source_fingerprint_sees_every_change_of_the_files(small_dataset, change):
    before = source_fingerprint(small_dataset)
    assert source_fingerprint(small_dataset) == before
    change(small_dataset)
    assert source_fingerprint(small_dataset) != before


def test_hidden_files_are_not_in_the_source_fingerprint(small_dataset):
    """Snakemake touches the fixture marker after the fixture job; temporary files come and go."""
    before = source_fingerprint(small_dataset)
    _later_mtime(small_dataset / ".fixture.json")
    (small_dataset / "videos" / ".a.avi.x1y2.tmp").write_bytes(b"half")
    assert source_fingerprint(small_dataset) == before


def test_refresh_rewrites_the_fingerprint_only_when_it_changed(small_dataset, tmp_path):
    path = tmp_path / "sources" / "data.json"
    assert refresh(path, small_dataset)
    written = path.stat().st_mtime_ns
    assert not refresh(path, small_dataset) and path.stat().st_mtime_ns == written
    _cut_in_half(small_dataset / "videos/b.avi")
    assert refresh(path, small_dataset) and json.loads(path.read_text()) == source_fingerprint(small_dataset)


@pytest.fixture(scope="module")
def prepared_copy(tmp_path_factory):
    """A repository copy in which the UCF101 fixture, its split-1 manifest and a low-shot subset
    were made by a real smoke run."""
    work = repository_copy(tmp_path_factory.mktemp("repo"))
    proc = snakemake(work, LOWSHOT, "--cores", "2", "--quiet", "rules")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (work / UCF101_FINGERPRINT).exists()
    return work


def test_a_second_invocation_plans_no_preparation(prepared_copy):
    """The fixture rule writes the fingerprint after the data; the next DAG build finds it unchanged."""
    proc = snakemake(prepared_copy, "-n", "--nolock", LOWSHOT)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout, proc.stdout[-3000:]


@pytest.mark.parametrize("change", SOURCE_CHANGES, ids=list(SOURCE_CHANGES))
def test_a_changed_video_or_annotation_file_plans_preparation_again(prepared_copy, change):
    alter, pattern = SOURCE_CHANGES[change]
    victim = sorted((prepared_copy / UCF101_FIXTURE).glob(pattern))[0]
    with restored_afterwards(victim, prepared_copy / UCF101_FINGERPRINT):
        alter(victim)
        proc = snakemake(prepared_copy, "-n", "--nolock", LOWSHOT)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert job_counts(proc.stdout) == {"manifest": 1, "ucf101_lowshot": 1}, proc.stdout[-3000:]
    assert f"Updated input files: {UCF101_FINGERPRINT}" in proc.stdout


def test_a_full_scale_dry_run_names_the_dataset_folder_it_looked_for(prepared_copy):
    proc = snakemake(prepared_copy, "-n", "--nolock", "tables/maclr_table1.md", "--config", "scale=full",
                     "data_root=/nonexistent")
    assert proc.returncode != 0
    assert "no folder /nonexistent/" in proc.stdout and "looked for it in the official layout" in proc.stdout
    assert "data_root=DIR" not in proc.stdout  # it was given
    without = snakemake(prepared_copy, "-n", "--nolock", "results/full/manifests/ucf101_split1.csv", "--config", "scale=full")
    assert without.returncode != 0 and "pass --config data_root=DIR" in without.stdout


@pytest.mark.parametrize("dataset, absent, named", [
    ("ucf101_split1", "ucfTrainTestlist/trainlist01.txt", "ucfTrainTestlist/trainlist01.txt"),
    ("hmdb51_split2", "testTrainMulti_7030_splits/brush_hair_test_split2.txt", "*_test_split2.txt"),
    ("k400_mini", "annotations/validate.csv", "annotations/validate.csv"),
])
def test_an_incomplete_dataset_root_names_what_it_lacks(tmp_path, dataset, absent, named):
    """A subset (k400_mini) needs its parent's layout."""
    root = tmp_path / dataset_info(dataset).directory
    for rel in ("UCF-101/", "ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/trainlist01.txt",
                "ucfTrainTestlist/testlist01.txt", "testTrainMulti_7030_splits/brush_hair_test_split2.txt",
                "annotations/train.csv", "annotations/validate.csv", "train/", "val/"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            (root / rel).mkdir(exist_ok=True)
        elif rel != absent:
            (root / rel).touch()
    with pytest.raises(MissingInputError, match="lacks") as err:
        check_root(dataset, root)
    assert str(err.value).startswith(f"dataset {dataset!r}: {root} lacks") and named in str(err.value)


def test_an_unknown_evaluation_dataset_is_one_line_naming_the_known_ones(prepared_copy):
    proc = snakemake(prepared_copy, "-n", "--nolock", "results/smoke/eval/maclr/maclr/k400/linear/bogus.json")
    assert proc.returncode != 0 and "KeyError" not in proc.stdout
    line = next(line for line in proc.stdout.splitlines() if "unknown dataset 'bogus'" in line)
    assert "known: " in line and "ucf101_split1" in line and "hmdb51_split1" in line


def _ucf101_lists(root: Path, trainlist: bytes, class_index: bytes = b"1 Archery\n") -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (root / "UCF-101").mkdir()
    (lists / "classInd.txt").write_bytes(class_index)
    (lists / "trainlist01.txt").write_bytes(trainlist)
    (lists / "testlist01.txt").write_bytes(b"")
    return lists


@pytest.mark.parametrize("trainlist, class_index, at, reason", [
    (b"Archery/v_Archery_g08_c01.avi 1\nArchery/v_Archery_g08_c02.avi one\n", b"1 Archery\n",
     "trainlist01.txt:2", "class label 'one' is not an integer"),
    (b"Archery/v_Archery_g08_c01.avi 1\n", b"1 Archery\n2 Caf\xe9\n", "classInd.txt:2", "not UTF-8 text"),
], ids=["non-integer label", "not UTF-8"])
def test_a_bad_annotation_file_is_an_error_naming_file_and_line(tmp_path, capsys, trainlist, class_index, at, reason):
    _ucf101_lists(tmp_path / "UCF101", trainlist, class_index)
    with pytest.raises(AnnotationError, match=reason) as err:
        parse_ucf101(tmp_path / "UCF101", 1)
    assert at in str(err.value)
    argv = ["--dataset", "ucf101_split1", "--root", str(tmp_path / "UCF101"), "--scale", "smoke",
            "--out", str(tmp_path / "m.csv"), "--quarantine", str(tmp_path / "q.csv")]
    with pytest.raises(SystemExit) as exit_:
        manifest_main(argv)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message and at in message and reason in message
    assert not (tmp_path / "m.csv").exists()


def test_every_parser_refuses_a_file_that_is_not_utf8(tmp_path):
    """Kinetics-400's CSV and the JSON of the parsers of datasets/sources/parsers/ are read alike."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "train.csv").write_bytes(b"label,youtube_id,time_start,time_end,split\nd\xe9but,x,0,10,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: not UTF-8 text"):
        parse_kinetics400(tmp_path)
    (tmp_path / "Diving48_vocab.json").write_bytes(b'[["Back", "15som"],\n ["\xff"]]')
    with pytest.raises(AnnotationError, match=r"Diving48_vocab\.json:2: not UTF-8 text"):
        parse_diving48(tmp_path)


def test_fixture_files_are_written_through_temporary_files(tmp_path, monkeypatch):
    """Every file of a fixture, bad files included, goes through core.io (a temporary file renamed
    into place), so an interrupted fixture job never leaves half a file that looks whole."""
    direct = []
    for method in ("write_bytes", "write_text"):
        def write_and_note(self, data, *args, _write=getattr(Path, method), **kwargs):
            if not self.name.endswith(".tmp"):
                direct.append(self)
            return _write(self, data, *args, **kwargs)
        monkeypatch.setattr(Path, method, write_and_note)
    make_kinetics400(tmp_path / "Kinetics400", {**TINY_FIXTURE, "train_per_class": 1, "val_per_class": 1, "bad_files": True}, seed=0)
    fixtures_extra.make("ssv1", tmp_path / "SomethingSomethingV1", {**TINY_FIXTURE, "videos_per_class": 1}, seed=0)
    assert not direct


# ---- resume state tied to its inputs (the engine's last.pt; see also tests/test_engine.py)
def test_a_changed_manifest_sets_the_resume_state_aside_and_trains_afresh(tiny_k400, uninterrupted, tmp_path):
    """One video fewer in the training manifest after a finished pretraining: the re-run does not
    resume the old state (kept, renamed, named in the log); it trains from scratch on the new
    manifest and ends with different weights."""
    base, root = tiny_k400
    out = tmp_path / "rerun"
    shutil.copytree(uninterrupted, out)
    manifest = pd.read_csv(base / "k400.csv")
    smaller = tmp_path / "k400.csv"
    manifest.drop(index=manifest.index[manifest["split"] == "train"][0]).to_csv(smaller, index=False)
    rerun = subprocess.run(pretrain_command(base, root, out, smaller), cwd=REPO, env=run_env(), check=True,
                           capture_output=True, text=True)
    assert "not resuming" in rerun.stderr and "manifest differs" in rerun.stderr and "last.stale-1.pt" in rerun.stderr
    assert (out / "last.stale-1.pt").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == 0 and summary["videos"] == len(manifest[manifest["split"] == "train"]) - 1
    assert summary["steps"] == 6 * (15 // 8)
    old, new = weights(uninterrupted / "last.pt"), weights(out / "last.pt")
    assert any(not torch.equal(old[k], new[k]) for k in old)


def test_a_finished_run_is_not_resumed_when_its_job_runs_again(tiny_k400, uninterrupted, tmp_path):
    """Snakemake re-runs a finished job only when its checkpoint must be remade (--forcerun, a
    deleted checkpoint): the re-run starts clean, and with the same inputs ends where the first did."""
    base, root = tiny_k400
    out = tmp_path / "forced"
    shutil.copytree(uninterrupted, out)
    rerun = subprocess.run(pretrain_command(base, root, out), cwd=REPO, env=run_env(), check=True, capture_output=True, text=True)
    assert "finished run" in rerun.stderr and (out / "last.stale-1.pt").exists()
    assert json.loads((out / "summary.json").read_text())["resumed_from_epoch"] == 0
    assert_same_weights(weights(out / "last.pt"), weights(uninterrupted / "last.pt"))
