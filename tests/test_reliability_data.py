"""Dataset preparation never publishes a half-made dataset, never aborts on one bad input, never loses an image.

Raw trees in the CK+ and Oulu-CASIA layouts are built here from skimage's astronaut photo (CK+) and
the stand-in tree of test_data_prepare (Oulu-CASIA); each fault is injected, prepare runs with the
stand-in detector (one real-MTCNN run at the end), and the tests assert the reject row and its
reason, the accounting identity (image files on disk = manifest + rejected files + files of
rejected / unlabelled sequences + unused middle frames + hidden files, all in summary.json), and that
an interrupted publish is refused on load and completed by a rerun to byte-identical files.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skimage.data")  # photo_faces draws from its photos

from test_data_prepare import FakeDetector, _oulu_tree  # noqa: E402  (stand-in detector, Oulu tree)

from data_prep import publish, readers_common  # noqa: E402
from data_prep.ckplus import read_ckplus  # noqa: E402
from data_prep.prepare import prepare_ckplus, prepare_oulu, prepare_synthfaces, read_manifest  # noqa: E402
from data_prep.publish import MARKER, PROTOCOL_FILES, IncompleteDatasetError, check_counts  # noqa: E402
from data_prep.raw_trees import CK_IMAGES, photo_faces  # noqa: E402
from data_prep.raw_trees import ckplus_sequence as _sequence  # noqa: E402
from data_prep.raw_trees import write_image as _write  # noqa: E402
from data_prep.readers_common import IMAGE_SUFFIXES, SEQUENCE_REASONS  # noqa: E402
from experiments.face_expression.config import ExperimentConfig  # noqa: E402
from experiments.face_expression.data import ensure_prepared, load_prepared  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CK = CK_IMAGES
FACE = photo_faces(64)[0]
VOLATILE = ("seconds", "generation_seconds", "alignment_this_run")


def _frames(n: int, shift: int = 0) -> list[np.ndarray]:
    return [np.clip(FACE.astype(int) + 4 * k + shift, 0, 255).astype(np.uint8) for k in range(n)]


def _ck_tree(root: Path, subjects=("S010", "S011", "S012", "S013"), n: int = 5) -> Path:
    """CK+ layout: each subject has sequences 001 (happy) and 002 (surprise) of ``n`` frames, S010/009 unlabelled."""
    for i, subj in enumerate(subjects):
        for j, (seq, label) in enumerate((("001", 5), ("002", 7))):
            _sequence(root, subj, seq, _frames(n, 10 * i + 3 * j), label)
    _sequence(root, "S010", "009", _frames(3), None)
    return root


def _prepare_ck(raw: Path, out: Path, **kw):
    kw = {"image_size": 32, "num_folds": 2, "progress": False, "detector": FakeDetector(), **kw}
    return prepare_ckplus(raw, out, **kw)


def _image_files_on_disk(root: Path) -> int:
    """Every entry with an image suffix that is not a folder (broken links and loops included)."""
    return sum(Path(f).suffix.lower() in IMAGE_SUFFIXES for _, _, files in os.walk(root) for f in files)


def _assert_accounted(out: Path, images_root: Path, source_prefix: str = "") -> pd.DataFrame:
    """Files on disk = manifest + rejected files + files of rejected / unlabelled sequences + unused + hidden."""
    summary = json.loads((out / "summary.json").read_text())
    inputs, files = summary["inputs"], summary["inputs"]["files"]
    man = read_manifest(out)
    rej = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    file_rej = rej[~rej["reason"].isin(SEQUENCE_REASONS)]
    assert inputs["image_files"] == _image_files_on_disk(images_root) == sum(files.values())
    assert files["manifest"] == len(man) and files["rejected"] == len(file_rej)
    sources = list(man["source"]) + list(file_rej["source"])
    assert len(set(sources)) == len(sources), "an image is both used and rejected, or rejected twice"
    for s in sources:
        assert os.path.lexists(images_root / s[len(source_prefix) :]), s
    assert man["path"].is_unique and all((out / p).is_file() for p in man["path"])
    return rej


def _label(root: Path, key: str) -> Path:
    return next((root / "Emotion" / key).glob("*_emotion.txt"))


def _deny(monkeypatch, target, name: str, path: Path) -> None:
    """Make ``target.name(path, ...)`` raise PermissionError (the tests may run as root, where chmod does not)."""
    real = getattr(target, name)

    def denied(first, *args, **kwargs):
        if Path(first) == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(first, *args, **kwargs)

    monkeypatch.setattr(target, name, denied)


# ------------------------------------------------------------------ reader-level faults: one sequence rejected
def _label_content(content: bytes):
    def fault(root, key, monkeypatch):
        label = _label(root, key)
        label.write_bytes(content)
        return "bad_label", label.name

    return fault


def _label_loop(root, key, monkeypatch):
    label = _label(root, key)
    label.unlink()
    os.symlink(label.name, label)
    return "unreadable_label", "symbolic link"


def _label_unreadable(root, key, monkeypatch):
    label = _label(root, key)
    _deny(monkeypatch, Path, "read_bytes", label)
    return "unreadable_label", f"{label.name} (Permission denied)"


def _two_labels(root, key, monkeypatch):
    label = _label(root, key)
    (label.parent / label.name.replace("0005_", "0004_")).write_text("   5.0000000e+00\n")
    return "bad_label", "2 label files"


def _folder_unreadable(root, key, monkeypatch):
    _deny(monkeypatch, readers_common, "list_dir", root / CK / key)
    return "unreadable_sequence", "Permission denied"


def _folder_loop(root, key, monkeypatch):
    folder = root / CK / key
    shutil.rmtree(folder)
    os.symlink(folder.name, folder)
    return "unreadable_sequence", "symbolic link loop"


def _frame_without_number(root, key, monkeypatch):
    folder = root / CK / key
    (folder / f"{key.replace('/', '_')}_00000003.png").rename(folder / "final.png")
    return "bad_frame_name", "final.png"


def _duplicate_frame(root, key, monkeypatch):
    folder = root / CK / key
    stem = f"{key.replace('/', '_')}_00000003"
    cv2.imwrite(str(folder / f"{stem}.jpg"), FACE[..., ::-1])
    return "duplicate_frame", f"{stem}.jpg and {stem}.png"


READER_FAULTS = {
    "label abc": _label_content(b"abc"),
    "label empty": _label_content(b""),
    "label nan": _label_content(b"nan"),
    "label inf": _label_content(b"inf"),
    "label code 9": _label_content(b"   9.0000000e+00\n"),
    "label code 2.5": _label_content(b"2.5"),
    "label not UTF-8": _label_content(b"\xff\xfe3\x00"),
    "label symlink loop": _label_loop,
    "label unreadable": _label_unreadable,
    "two label files": _two_labels,
    "sequence folder unreadable": _folder_unreadable,
    "sequence folder symlink loop": _folder_loop,
    "frame without a number": _frame_without_number,
    "duplicate frame number": _duplicate_frame,
}


@pytest.mark.parametrize("fault", list(READER_FAULTS))
def test_a_reader_problem_rejects_its_sequence_only(tmp_path, monkeypatch, fault):
    raw = _ck_tree(tmp_path / "raw")
    reason, named = READER_FAULTS[fault](raw, "S011/001", monkeypatch)
    frames = read_ckplus(raw)
    rows = [r for r in frames.attrs["skipped"] if r["source"] == "S011/001"]
    assert [r["reason"] for r in rows] == [reason] and named in rows[0]["detail"], rows
    assert len(frames.attrs["skipped"]) == 1, frames.attrs["skipped"]
    assert len(frames) == 7 * 4 and not ((frames["subject"] == "S011") & (frames["sequence"] == "001")).any()
    assert frames.attrs["inputs"]["sequences"] == {"used": 7, "rejected": 1, "unlabelled": 1}


def test_all_faults_at_once_each_end_in_a_reject_row_and_every_image_is_accounted_for(tmp_path, monkeypatch):
    subjects = [f"S{i:03d}" for i in range(20, 29)]
    raw = _ck_tree(tmp_path / "raw", subjects)
    expected = {}
    seq_faults = [
        _label_content(b"abc"),
        _label_content(b"nan"),
        _label_content(b"\xff"),
        _label_loop,
        _label_unreadable,
        _folder_unreadable,
        _folder_loop,
        _frame_without_number,
        _duplicate_frame,
    ]
    for subj, fault in zip(subjects, seq_faults):
        expected[f"{subj}/002"] = fault(raw, f"{subj}/002", monkeypatch)[0]
    seq = raw / CK / "S020" / "001"
    (seq / "S020_001_00000001.png").unlink()
    os.symlink("S020_001_00000001.png", seq / "S020_001_00000001.png")  # neutral slot: a symlink loop
    (seq / "S020_001_00000002.png").unlink()
    os.symlink("/nonexistent/frame.png", seq / "S020_001_00000002.png")  # middle frame: a broken link
    expected["S020/001/S020_001_00000001.png"] = expected["S020/001/S020_001_00000002.png"] = "unreadable"
    _deny(monkeypatch, np, "fromfile", raw / CK / "S021/001/S021_001_00000005.png")  # PermissionError on read
    expected["S021/001/S021_001_00000005.png"] = "unreadable"
    _write(raw / CK / "S022" / "stray.png", FACE)  # outside any sequence folder
    expected["S022/stray.png"] = "outside_layout"
    _write(raw / CK / "S022" / "001" / "._S022_001_00000001.png", b"AppleDouble")  # hidden: counted only
    e = raw / "Emotion" / "S029" / "001"  # a label without images
    e.mkdir(parents=True)
    (e / "S029_001_00000010_emotion.txt").write_text("   6.0000000e+00\n")
    expected["S029/001"] = "missing_sequence"
    _sequence(raw, "S023", "003", _frames(3), 1)  # too short
    expected["S023/003"] = "short_sequence"

    summary = _prepare_ck(raw, tmp_path / "out", num_folds=3)
    rej = _assert_accounted(tmp_path / "out", raw / CK)
    assert dict(zip(rej["source"], rej["reason"])) == expected
    assert rej["detail"].str.len().gt(0).all()
    files = summary["inputs"]["files"]
    assert files["hidden"] == 1 and files["in_unlabelled_sequences"] == 3 and files["not_protocol_frames"] > 0
    assert summary["inputs"]["sequences"] == {"used": 9, "rejected": 11, "unlabelled": 1}
    man = read_manifest(tmp_path / "out")
    s20 = man[(man["subject"] == "S020") & (man["sequence"] == "001")]
    assert s20["frame"].tolist() == [3, 4, 5] and (s20["role"] == "peak").all()  # frame 2 did not become neutral


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_image_without_read_permission_is_rejected(tmp_path):
    raw = _ck_tree(tmp_path / "raw")
    locked = raw / CK / "S011/001/S011_001_00000001.png"
    locked.chmod(0)
    try:
        _prepare_ck(raw, tmp_path / "out")
    finally:
        locked.chmod(0o644)
    rej = _assert_accounted(tmp_path / "out", raw / CK)
    assert rej.loc[rej["source"] == "S011/001/S011_001_00000001.png", "reason"].tolist() == ["unreadable"]


def test_oulu_faults_reject_one_sequence_or_file_and_every_image_is_accounted_for(tmp_path, monkeypatch):
    _oulu_tree(tmp_path)
    base = tmp_path / "raw" / "VL" / "Strong"
    cv2.imwrite(str(base / "P001/Anger/000.png"), FACE[..., ::-1])  # duplicate frame number
    (base / "P001/Disgust/002.jpeg").rename(base / "P001/Disgust/peak.jpeg")  # frame without a number
    shutil.copytree(base / "P002/Anger", base / "P002/anger")  # two Anger folders
    _deny(monkeypatch, readers_common, "list_dir", base / "P002/Fear")  # unreadable folder
    (base / "P003/Happiness/001.jpeg").unlink()
    os.symlink("/nonexistent.jpeg", base / "P003/Happiness/001.jpeg")  # broken link, middle frame
    (base / "P003/Sadness/000.jpeg").unlink()
    os.symlink("000.jpeg", base / "P003/Sadness/000.jpeg")  # symlink loop, neutral slot
    shutil.rmtree(base / "P004/Surprise")  # missing sequence
    _write(base / "P004" / "Extra" / "000.jpeg", FACE)  # outside the layout
    _deny(monkeypatch, np, "fromfile", base / "P001/Fear/004.jpeg")  # PermissionError on read

    summary = prepare_oulu(
        tmp_path / "raw", tmp_path / "out", image_size=32, num_folds=2, progress=False, detector=FakeDetector()
    )
    rej = _assert_accounted(tmp_path / "out", base, "VL_Strong/")
    got = dict(zip(rej["source"], rej["reason"]))
    assert got == {
        "VL_Strong/P001/Anger": "duplicate_frame",
        "VL_Strong/P001/Disgust": "bad_frame_name",
        "VL_Strong/P002/Anger": "duplicate_sequence",
        "VL_Strong/P002/Fear": "unreadable_sequence",
        "VL_Strong/P003/Happiness/001.jpeg": "unreadable",
        "VL_Strong/P003/Sadness/000.jpeg": "unreadable",
        "VL_Strong/P004/Surprise": "missing_sequence",
        "VL_Strong/P004/Extra/000.jpeg": "outside_layout",
        "VL_Strong/P001/Fear/004.jpeg": "unreadable",
        "VL_Strong/P004/Fear/004.jpeg": "no_face",
    }
    assert "000.jpeg and 000.png" in rej.set_index("source").loc["VL_Strong/P001/Anger", "detail"]
    assert summary["inputs"]["sequences"] == {"used": 19, "rejected": 5, "unlabelled": 0}


# ------------------------------------------------------------------ folds are checked before any image is made
def test_folds_are_checked_before_any_image_is_generated_or_aligned(tmp_path):
    for folds, message in ((5, "cannot split 3 subjects into 5"), (1, "num_folds must be >= 2")):
        out = tmp_path / f"synth{folds}"
        with pytest.raises(ValueError, match=message):
            prepare_synthfaces(out, num_identities=3, num_folds=folds, workers=1, progress=False)
        assert not out.exists()

    class CountingDetector(FakeDetector):
        calls = 0

        def detect_faces(self, images, **kw):
            CountingDetector.calls += 1
            return super().detect_faces(images, **kw)

    raw = _ck_tree(tmp_path / "raw")
    with pytest.raises(ValueError, match="cannot split 4 subjects into 5"):
        _prepare_ck(raw, tmp_path / "ck", num_folds=5, detector=CountingDetector())
    assert CountingDetector.calls == 0 and not (tmp_path / "ck" / "aligned").exists()


# ------------------------------------------------------------------ interrupted publish: refused, then completed
class Killed(BaseException):
    """Stands for SIGKILL inside prepare (no handler of Exception catches it)."""


@pytest.fixture(scope="module")
def ck_clean(tmp_path_factory):
    """A raw CK+ tree and its uninterrupted prepare."""
    root = tmp_path_factory.mktemp("ck")
    raw = _ck_tree(root / "raw")
    _prepare_ck(raw, root / "clean")
    return raw, root / "clean"


def _protocol_bytes(out: Path) -> dict[str, bytes]:
    files = {n: (out / n).read_bytes() for n in PROTOCOL_FILES if n != "summary.json"}
    files.update({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "aligned").rglob("*.png"))})
    summary = json.loads((out / "summary.json").read_text())
    files["summary.json"] = json.dumps({k: v for k, v in summary.items() if k not in VOLATILE}).encode()
    return files


def _config(out: Path, dataset: str = "ckplus", **kw) -> ExperimentConfig:
    return ExperimentConfig.load("tiny").override(dataset=dataset, data_dir=str(out), **kw)


@pytest.mark.parametrize("killed_after", range(len(PROTOCOL_FILES) + 1))
def test_a_prepare_killed_while_publishing_is_refused_and_a_rerun_completes_it(
    ck_clean, tmp_path, monkeypatch, killed_after
):
    raw, clean = ck_clean
    out = tmp_path / "out"
    real, written = publish.write_atomic, []

    def dying(path, data):
        if len(written) == killed_after:
            raise Killed(path.name)
        real(path, data)
        written.append(path.name)

    monkeypatch.setattr(publish, "write_atomic", dying)
    with pytest.raises(Killed):
        _prepare_ck(raw, out)
    monkeypatch.setattr(publish, "write_atomic", real)
    assert written == list(PROTOCOL_FILES[:killed_after]) and not (out / MARKER).exists()
    with pytest.raises(IncompleteDatasetError) as err:
        load_prepared(_config(out))
    message = str(err.value)
    assert "\n" not in message and str(out) in message and MARKER in message
    assert "dynamic-mtl prepare ckplus --root" in message and f"--out {out}`" in message
    with pytest.raises(IncompleteDatasetError, match="COMPLETE marker"):  # run without DATA_ROOT: refused
        ensure_prepared(_config(out))

    _prepare_ck(raw, out)
    assert _protocol_bytes(out) == _protocol_bytes(clean)
    assert len(load_prepared(_config(out)).manifest) == len(read_manifest(clean))


def test_a_rerun_killed_over_a_complete_dataset_is_refused(ck_clean, tmp_path, monkeypatch):
    """Re-preparing with another seed, killed after folds.csv: new folds beside old pairs must not load."""
    raw, clean = ck_clean
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    real, written = publish.write_atomic, []

    def dying(path, data):
        if len(written) == 3:
            raise Killed(path.name)
        real(path, data)
        written.append(path.name)

    monkeypatch.setattr(publish, "write_atomic", dying)
    with pytest.raises(Killed):
        _prepare_ck(raw, out, seed=1)
    assert (out / "folds.csv").read_bytes() != (clean / "folds.csv").read_bytes()
    with pytest.raises(IncompleteDatasetError, match="COMPLETE marker is missing"):
        load_prepared(_config(out))


def test_a_torn_or_changed_dataset_is_refused_on_load(ck_clean, tmp_path):
    _, clean = ck_clean
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    data = load_prepared(_config(out))
    summary = json.loads((out / "summary.json").read_text())
    pairs = pd.read_csv(out / "pairs.csv")
    with pytest.raises(IncompleteDatasetError, match=r"pairs\.csv has \d+ pairs in fold 1, summary\.json says"):
        check_counts(out, summary, data.manifest, data.folds, pairs[pairs["fold"] != 1])
    with pytest.raises(IncompleteDatasetError, match=r"manifest\.csv has \d+ rows, summary\.json says"):
        check_counts(out, summary, data.manifest.iloc[:-1], data.folds, pairs)
    text = (out / "pairs.csv").read_bytes()
    (out / "pairs.csv").write_bytes(text[: len(text) // 2])  # a torn file under a marker
    with pytest.raises(IncompleteDatasetError, match=r"pairs\.csv has \d+ bytes, \d+ when it was prepared"):
        load_prepared(_config(out))
    (out / MARKER).unlink()
    (out / "manifest.csv").write_bytes(b"")  # killed right after manifest.csv appeared
    with pytest.raises(IncompleteDatasetError, match="COMPLETE marker is missing"):
        load_prepared(_config(out))


def test_a_refused_rerun_leaves_a_complete_dataset_untouched(ck_clean, tmp_path):
    raw, clean = ck_clean
    out = tmp_path / "out"
    shutil.copytree(clean, out)
    before = _protocol_bytes(out)
    with pytest.raises(ValueError, match="cannot split"):
        _prepare_ck(raw, out, num_folds=9)
    with pytest.raises(ValueError, match="other alignment settings"):
        _prepare_ck(raw, out, alignment="template")
    assert (out / MARKER).is_file() and _protocol_bytes(out) == before
    load_prepared(_config(out))


@pytest.mark.slow
def test_synthfaces_killed_by_sigkill_while_publishing_is_completed_by_run(tmp_path):
    """A real SIGKILL right after pairs.csv: load refuses; run's ensure_prepared completes it to the same bytes."""
    out = tmp_path / "killed"
    script = (
        "import os, signal\n"
        "from data_prep import publish, prepare\n"
        "real = publish.write_atomic\n"
        "def dying(path, data):\n"
        "    real(path, data)\n"
        "    if path.name == 'pairs.csv':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "publish.write_atomic = dying\n"
        f"prepare.prepare_synthfaces({str(out)!r}, num_identities=10, seed=0, workers=1, progress=False)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / "pairs.csv").is_file() and not (out / "summary.json").exists()
    before = {n: (out / n).read_bytes() for n in ("manifest.csv", "rejects.csv", "folds.csv", "pairs.csv")}
    config = _config(out, "synthfaces", synthfaces_identities=10, seed=0)
    with pytest.raises(IncompleteDatasetError, match=r"\['summary\.json'\] and the COMPLETE marker are missing"):
        load_prepared(config)
    assert ensure_prepared(config, progress=False) == out  # what `run` does first: completes the dataset
    assert {n: (out / n).read_bytes() for n in before} == before
    assert len(load_prepared(config).pairs) == json.loads((out / "summary.json").read_text())["pairs"]["total"]
    with pytest.raises(ValueError, match="other settings"):  # never mixes two generations in one folder
        prepare_synthfaces(out, num_identities=10, image_size=24, progress=False)
    assert (out / MARKER).is_file()


# ------------------------------------------------------------------ the same with the real MTCNN
def test_real_mtcnn_prepare_with_faults_rejects_and_accounts_for_every_image(tmp_path, monkeypatch):
    pytest.importorskip("mtcnn")
    astro, cam, _ = photo_faces(200)
    raw = tmp_path / "raw"
    for subj, base in (("S010", astro), ("S011", cam)):
        for seq, label in (("001", 5), ("002", 7)):
            _sequence(
                raw, subj, seq, [np.clip(base.astype(int) + 5 * k, 0, 255).astype(np.uint8) for k in range(5)], label
            )
    _duplicate_frame(raw, "S010/001", monkeypatch)
    _label_content(b"nan")(raw, "S011/002", monkeypatch)
    neutral = raw / CK / "S011/001/S011_001_00000001.png"
    neutral.unlink()
    os.symlink("/nonexistent.png", neutral)
    _deny(monkeypatch, np, "fromfile", raw / CK / "S010/002/S010_002_00000005.png")
    summary = prepare_ckplus(raw, tmp_path / "out", image_size=64, num_folds=2, progress=False)
    rej = _assert_accounted(tmp_path / "out", raw / CK)
    assert dict(zip(rej["source"], rej["reason"])) == {
        "S010/001": "duplicate_frame",
        "S011/002": "bad_label",
        "S011/001/S011_001_00000001.png": "unreadable",
        "S010/002/S010_002_00000005.png": "unreadable",
    }
    assert summary["images"] == 3 + 3 and summary["inputs"]["sequences"] == {"used": 2, "rejected": 2, "unlabelled": 0}


def test_the_probe_classifies_outcomes_and_writes_its_report(tmp_path):
    from data_prep import probe

    assert (
        probe.main(
            [
                "--detector",
                "stand-in",
                "--only",
                " is a ",
                "--out",
                str(tmp_path / "probe.md"),
                "--json",
                str(tmp_path / "probe.json"),
            ]
        )
        == 0
    )
    text = (tmp_path / "probe.md").read_text()
    rows = json.loads((tmp_path / "probe.json").read_text())["cases"]
    assert len(rows) == sum(" is a " in c[0] for c in probe.CASES) >= 5
    assert {r["outcome"] for r in rows} == {"reject row", "clear error"}, rows  # "root is a file": an error
    assert f"**{len(rows)} bad inputs tried" in text and "0 tracebacks" in text and "0 silent drops" in text
    assert "data-probe-" not in text  # no temporary folder named in the report
