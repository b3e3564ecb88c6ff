"""Probe of dataset preparation with bad inputs and interruptions (writes a report).

    python -m data_prep.probe [--out docs/data_probe.md] [--json FILE] [--detector mtcnn|stand-in] [--only TEXT]

Small raw trees in the CK+ and Oulu-CASIA layouts are built from skimage's photos (astronaut,
camera) in a temporary folder by :mod:`data_prep.raw_trees`; each case injects one fault, runs
prepare through the API (one MTCNN loaded once) and classifies the outcome:

* ``reject``: the expected reject row (reason, and the file or sequence as source) is in
  rejects.csv, and every image file is accounted for (files on disk = summary.json ``inputs``,
  manifest and file rejects name distinct files);
* ``note``: the image was converted and kept with the expected manifest note;
* ``clear error``: a ValueError / FileNotFoundError with a one-line message (and, where the case
  says so, nothing generated or aligned before it);
* ``traceback``: any other exception, or a message on several lines;
* ``silent drop``: prepare finished but the fault is not named, or an image is not accounted for.

Kill cases raise inside the protocol-file writer after k files (k = 0..5, and once over a complete
dataset with another seed) and check that loading refuses the folder and that a rerun completes it
to the bytes of an uninterrupted prepare. Permission faults are real (chmod) unless the probe runs
as root, which reads any file; then the read is made to fail by a patch and the case says
"simulated".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import ckplus as ckplus_mod
from . import oulu as oulu_mod
from . import publish, readers_common
from .prepare import prepare_ckplus, prepare_oulu, prepare_synthfaces, read_manifest
from .publish import PROTOCOL_FILES, IncompleteDatasetError
from .raw_trees import CK_IMAGES, OULU_FOLDERS, ckplus_sequence, oulu_sequence, photo_faces, write_image
from .readers_common import IMAGE_SUFFIXES, SEQUENCE_REASONS

CK = CK_IMAGES
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
SIZE = 160


class StandInDetector:
    """One central face for every image that is not uniform (for a fast dry run of the probe)."""

    def _one(self, img):
        if img.std() < 1.0:
            return []
        h, w = img.shape[:2]
        return [
            {
                "box": [w // 4, h // 4, w // 2, h // 2],
                "confidence": 0.99,
                "keypoints": {"left_eye": [int(w * 0.4), int(h * 0.4)], "right_eye": [int(w * 0.6), int(h * 0.4)]},
            }
        ]

    def detect_faces(self, images, **kw):
        return [self._one(i) for i in images] if isinstance(images, list) else self._one(images)


# ------------------------------------------------------------------ raw trees
def _frames(base: np.ndarray, n: int, shift: int) -> list[np.ndarray]:
    return [np.clip(base.astype(int) + 5 * k + shift, 0, 255).astype(np.uint8) for k in range(n)]


def ck_tree(root: Path, subjects: int = 3) -> Path:
    """S010.. with sequences 001 (happy) and 002 (surprise) of 5 frames; S010/009 unlabelled."""
    faces = photo_faces(SIZE)
    for i in range(subjects):
        for j, (seq, label) in enumerate((("001", 5), ("002", 7))):
            ckplus_sequence(root, f"S{10 + i:03d}", seq, _frames(faces[i % 3], 5, 7 * i + 3 * j), label)
    ckplus_sequence(root, "S010", "009", _frames(faces[0], 3, 0), None)
    return root


def oulu_tree(root: Path, subjects: int = 3) -> Path:
    faces = photo_faces(SIZE)
    for i in range(subjects):
        for j, folder in enumerate(OULU_FOLDERS):
            oulu_sequence(root, f"P{i + 1:03d}", folder, _frames(faces[i % 3], 5, 4 * j))
    return root


# ------------------------------------------------------------------ faults
@contextlib.contextmanager
def denied(path: Path):
    """Reading or listing ``path`` fails with PermissionError: chmod 0, or a patch when running as root."""
    if not ROOT_USER:
        mode = path.stat().st_mode
        path.chmod(0)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    patched = [
        (np, "fromfile"),
        (Path, "read_bytes"),
        (readers_common, "list_dir"),
        (ckplus_mod, "list_dir"),
        (oulu_mod, "list_dir"),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name in patched]

    def wrap(real):
        def f(first, *a, **kw):
            if Path(first) == path:
                raise PermissionError(13, "Permission denied", str(path))
            return real(first, *a, **kw)

        return f

    for obj, name, real in saved:
        setattr(obj, name, wrap(real))
    try:
        yield
    finally:
        for obj, name, real in saved:
            setattr(obj, name, real)


def _label(raw: Path, key: str = "S011/002") -> Path:
    return next((raw / "Emotion" / key).glob("*_emotion.txt"))


def _seq(raw: Path, key: str = "S011/002") -> Path:
    return raw / CK / key


def _set_label(content: bytes):
    return lambda raw: _label(raw).write_bytes(content)


def _relink(path: Path, target: str) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.symlink(target, path)


def _frame(raw: Path, k: int, key: str = "S011/002") -> Path:
    return _seq(raw, key) / f"{key.replace('/', '_')}_{k:08d}.png"


def _write_raw(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _gray(raw):
    p = _frame(raw, 5)
    cv2.imwrite(str(p), cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2GRAY))


def _rgba(raw):
    p = _frame(raw, 5)
    cv2.imwrite(str(p), cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2BGRA))


def _sixteen(raw):
    p = _frame(raw, 5)
    cv2.imwrite(str(p), cv2.imread(str(p)).astype(np.uint16) * 257)


def _short(raw):
    for k in (4, 5):
        _frame(raw, k).unlink()


def _label_only(raw):
    e = raw / "Emotion" / "S012" / "004"
    e.mkdir(parents=True)
    (e / "S012_004_00000010_emotion.txt").write_text("   6.0000000e+00\n")


def _all_labels_bad(raw):
    for p in (raw / "Emotion").glob("*/*/*_emotion.txt"):
        p.write_text("abc")


#: (name, dataset, fault(raw) or None, fault to hold while prepare runs (a path to deny) or None,
#:  expected: ("reject", reason, source) | ("note", note, source) | ("error", message part),
#:  prepare options)
Case = tuple[str, str, Callable | None, Callable | None, tuple, dict]
F1 = "S011/002/S011_002_00000001.png"
F2 = "S011/002/S011_002_00000002.png"
F5 = "S011/002/S011_002_00000005.png"
CASES: list[Case] = [
    ("label 'abc'", "ckplus", _set_label(b"abc"), None, ("reject", "bad_label", "S011/002"), {}),
    ("label empty", "ckplus", _set_label(b""), None, ("reject", "bad_label", "S011/002"), {}),
    ("label 'nan'", "ckplus", _set_label(b"nan"), None, ("reject", "bad_label", "S011/002"), {}),
    ("label 'inf'", "ckplus", _set_label(b"inf"), None, ("reject", "bad_label", "S011/002"), {}),
    ("label code 9", "ckplus", _set_label(b"   9.0000000e+00\n"), None, ("reject", "bad_label", "S011/002"), {}),
    ("label code 2.5", "ckplus", _set_label(b"2.5"), None, ("reject", "bad_label", "S011/002"), {}),
    ("label not UTF-8", "ckplus", _set_label(b"\xff\xfe3\x00"), None, ("reject", "bad_label", "S011/002"), {}),
    (
        "label is a symlink loop",
        "ckplus",
        lambda raw: _relink(_label(raw), _label(raw).name),
        None,
        ("reject", "unreadable_label", "S011/002"),
        {},
    ),
    (
        "label is a broken link",
        "ckplus",
        lambda raw: _relink(_label(raw), "/nonexistent.txt"),
        None,
        ("reject", "unreadable_label", "S011/002"),
        {},
    ),
    ("label without read permission", "ckplus", None, _label, ("reject", "unreadable_label", "S011/002"), {}),
    (
        "two label files",
        "ckplus",
        lambda raw: (_label(raw).parent / "S011_002_00000004_emotion.txt").write_text("   5.0000000e+00\n"),
        None,
        ("reject", "bad_label", "S011/002"),
        {},
    ),
    (
        "label folder not listable",
        "ckplus",
        None,
        lambda raw: _label(raw).parent,
        ("reject", "unreadable_label", "S011/002"),
        {},
    ),
    ("sequence folder not listable", "ckplus", None, _seq, ("reject", "unreadable_sequence", "S011/002"), {}),
    (
        "sequence folder is a symlink loop",
        "ckplus",
        lambda raw: _relink(_seq(raw), "002"),
        None,
        ("reject", "unreadable_sequence", "S011/002"),
        {},
    ),
    (
        "sequence folder is a file",
        "ckplus",
        lambda raw: (shutil.rmtree(_seq(raw)), _seq(raw).write_text("x")),
        None,
        ("reject", "unreadable_sequence", "S011/002"),
        {},
    ),
    ("label without image folder", "ckplus", _label_only, None, ("reject", "missing_sequence", "S012/004"), {}),
    ("sequence of 3 frames", "ckplus", _short, None, ("reject", "short_sequence", "S011/002"), {}),
    (
        "frame name without a number",
        "ckplus",
        lambda raw: _frame(raw, 3).rename(_seq(raw) / "final.png"),
        None,
        ("reject", "bad_frame_name", "S011/002"),
        {},
    ),
    (
        "two files with frame number 3 (.png, .jpg)",
        "ckplus",
        lambda raw: shutil.copy(_frame(raw, 3), _frame(raw, 3).with_suffix(".jpg")),
        None,
        ("reject", "duplicate_frame", "S011/002"),
        {},
    ),
    (
        "neutral frame is a symlink loop",
        "ckplus",
        lambda raw: _relink(_frame(raw, 1), _frame(raw, 1).name),
        None,
        ("reject", "unreadable", F1),
        {},
    ),
    (
        "middle frame is a broken link",
        "ckplus",
        lambda raw: _relink(_frame(raw, 2), "/nonexistent.png"),
        None,
        ("reject", "unreadable", F2),
        {},
    ),
    (
        "peak frame without read permission",
        "ckplus",
        None,
        lambda raw: _frame(raw, 5),
        ("reject", "unreadable", F5),
        {},
    ),
    (
        "peak frame corrupt",
        "ckplus",
        lambda raw: _write_raw(_frame(raw, 5), b"\x89PNG\r\n\x1a\ngarbage"),
        None,
        ("reject", "unreadable", F5),
        {},
    ),
    ("peak frame empty", "ckplus", lambda raw: _write_raw(_frame(raw, 5), b""), None, ("reject", "unreadable", F5), {}),
    (
        "peak frame without a face",
        "ckplus",
        lambda raw: write_image(_frame(raw, 5), np.full((SIZE, SIZE, 3), 200, np.uint8)),
        None,
        ("reject", "no_face", F5),
        {},
    ),
    ("peak frame grayscale", "ckplus", _gray, None, ("note", "grayscale_converted", F5), {}),
    ("peak frame RGBA", "ckplus", _rgba, None, ("note", "rgba_converted", F5), {}),
    ("peak frame 16-bit", "ckplus", _sixteen, None, ("note", "16bit_converted", F5), {}),
    (
        "image outside any sequence folder",
        "ckplus",
        lambda raw: write_image(raw / CK / "S011" / "x.png", photo_faces(SIZE)[0]),
        None,
        ("reject", "outside_layout", "S011/x.png"),
        {},
    ),
    (
        "hidden AppleDouble file",
        "ckplus",
        lambda raw: _write_raw(_seq(raw) / "._S011_002_00000001.png", b"x"),
        None,
        ("counted", "hidden", ""),
        {},
    ),
    (
        "sequence folder is a link to another sequence",
        "ckplus",
        lambda raw: _relink(_seq(raw), "001"),
        None,
        ("reject", "duplicate_file", "S011/002/S011_001_00000001.png"),
        {},
    ),
    ("--num-folds 1", "ckplus", None, None, ("error", "num_folds must be >= 2"), {"num_folds": 1}),
    ("more folds than subjects", "ckplus", None, None, ("error", "cannot split 3 subjects"), {"num_folds": 4}),
    ("root does not exist", "ckplus", lambda raw: shutil.rmtree(raw), None, ("error", "not a directory"), {}),
    (
        "root is a file",
        "ckplus",
        lambda raw: (shutil.rmtree(raw), raw.write_text("x")),
        None,
        ("error", "not a directory"),
        {},
    ),
    ("no Emotion folder", "ckplus", lambda raw: shutil.rmtree(raw / "Emotion"), None, ("error", "['Emotion']"), {}),
    ("every label bad", "ckplus", _all_labels_bad, None, ("error", "no usable sequence"), {}),
    (
        "Oulu: Anger and anger folders",
        "oulu",
        lambda raw: shutil.copytree(raw / "VL/Strong/P001/Anger", raw / "VL/Strong/P001/anger"),
        None,
        ("reject", "duplicate_sequence", "VL_Strong/P001/Anger"),
        {},
    ),
    (
        "Oulu: expression folder missing",
        "oulu",
        lambda raw: shutil.rmtree(raw / "VL/Strong/P001/Fear"),
        None,
        ("reject", "missing_sequence", "VL_Strong/P001/Fear"),
        {},
    ),
    (
        "Oulu: images in an unknown folder",
        "oulu",
        lambda raw: shutil.copytree(raw / "VL/Strong/P001/Fear", raw / "VL/Strong/P001/Neutral"),
        None,
        ("reject", "outside_layout", "VL_Strong/P001/Neutral/000.jpeg"),
        {},
    ),
    (
        "Oulu: subject folder not listable",
        "oulu",
        None,
        lambda raw: raw / "VL/Strong/P002",
        ("reject", "unreadable_sequence", "VL_Strong/P002/Anger"),
        {},
    ),
    (
        "Oulu: sequence folder not listable",
        "oulu",
        None,
        lambda raw: raw / "VL/Strong/P001/Sadness",
        ("reject", "unreadable_sequence", "VL_Strong/P001/Sadness"),
        {},
    ),
    (
        "Oulu: 000.jpeg and 000.png",
        "oulu",
        lambda raw: shutil.copy(raw / "VL/Strong/P001/Anger/000.jpeg", raw / "VL/Strong/P001/Anger/000.png"),
        None,
        ("reject", "duplicate_frame", "VL_Strong/P001/Anger"),
        {},
    ),
    (
        "Oulu: frame name without a number",
        "oulu",
        lambda raw: (raw / "VL/Strong/P001/Anger/002.jpeg").rename(raw / "VL/Strong/P001/Anger/x.jpeg"),
        None,
        ("reject", "bad_frame_name", "VL_Strong/P001/Anger"),
        {},
    ),
    (
        "Oulu: spectrum folder missing",
        "oulu",
        lambda raw: shutil.rmtree(raw / "VL"),
        None,
        ("error", "expected VL/Strong"),
        {},
    ),
]


# ------------------------------------------------------------------ running the cases
def _image_files(root: Path) -> int:
    """Entries with an image suffix that are not folders, through links to folders too (one case has one)."""
    return sum(
        Path(f).suffix.lower() in IMAGE_SUFFIXES for _, _, files in os.walk(root, followlinks=True) for f in files
    )


def _accounting_problem(out: Path, images_root: Path, prefix: str) -> str | None:
    summary = json.loads((out / "summary.json").read_text())
    man = read_manifest(out)
    rej = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    file_rej = rej[~rej["reason"].isin(SEQUENCE_REASONS)]
    inputs = summary["inputs"]
    on_disk = _image_files(images_root)
    if not (inputs["image_files"] == on_disk == sum(inputs["files"].values())):
        return f"{on_disk} image files on disk, summary.json inputs {inputs}"
    sources = list(man["source"]) + list(file_rej["source"])
    if (
        len(set(sources)) != len(sources)
        or inputs["files"]["manifest"] != len(man)
        or inputs["files"]["rejected"] != len(file_rej)
    ):
        return "manifest and rejects do not name distinct files"
    missing = [s for s in sources if not os.path.lexists(images_root / s[len(prefix) :])]
    if missing:
        return f"rows name files that do not exist: {missing[:2]}"
    if not man["path"].is_unique:
        return "two manifest rows share an aligned crop"
    return None


def _one_line(err: BaseException) -> bool:
    return "\n" not in str(err) and len(str(err)) > 0


def run_case(case: Case, work: Path, detector) -> dict:
    name, dataset, fault, deny, expected, options = case
    raw, out = work / "raw", work / "out"
    if dataset == "ckplus":
        ck_tree(raw)
        images_root, prefix = raw / CK, ""
    else:
        oulu_tree(raw)
        images_root, prefix = raw / "VL" / "Strong", "VL_Strong/"
    if fault is not None:
        fault(raw)
    kw = {"image_size": 64, "num_folds": 2, "progress": False, "detector": detector, **options}
    prep = prepare_ckplus if dataset == "ckplus" else prepare_oulu
    row = {
        "case": name,
        "dataset": dataset,
        "expected": " ".join(expected[:2]),
        "simulated": bool(deny is not None and ROOT_USER),
    }
    try:
        with denied(deny(raw)) if deny is not None else contextlib.nullcontext():
            prep(raw, out, **kw)
    except (ValueError, FileNotFoundError) as err:
        clear = _one_line(err)
        row["outcome"] = "clear error" if clear else "traceback"
        row["detail"] = str(err).splitlines()[0][:160]
        if expected[0] != "error" or expected[1] not in str(err):
            row["outcome"] = "unexpected error" if clear else "traceback"
        elif (out / "aligned").exists() and any((out / "aligned").rglob("*.png")):
            row["outcome"] = "error after aligning"
        return row
    except Exception as err:  # noqa: BLE001 - the probe's job is to find these
        row["outcome"] = "traceback"
        row["detail"] = "".join(traceback.format_exception_only(type(err), err)).strip()[:160]
        return row
    problem = _accounting_problem(out, images_root, prefix)
    rej = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    man = read_manifest(out)
    if expected[0] == "reject":
        hit = rej[(rej["reason"] == expected[1]) & (rej["source"] == expected[2])]
        row["outcome"] = "reject row" if len(hit) and not problem else "silent drop"
        row["detail"] = problem or (hit["detail"].iloc[0][:160] if len(hit) else f"no {expected[1]} row")
    elif expected[0] == "note":
        notes = dict(zip(man["source"], man["note"]))
        ok = expected[1] in notes.get(expected[2], "") and not problem
        row["outcome"] = "note" if ok else "silent drop"
        row["detail"] = problem or f"manifest note {notes.get(expected[2])!r}"
    elif expected[0] == "counted":
        files = json.loads((out / "summary.json").read_text())["inputs"]["files"]
        row["outcome"] = "counted" if files.get(expected[1]) == 1 and not problem else "silent drop"
        row["detail"] = problem or f"summary.json inputs.files.{expected[1]} = {files.get(expected[1])}"
    else:
        row["outcome"], row["detail"] = "no error", problem or "prepare finished"
    return row


class _Killed(BaseException):
    pass


def _protocol_bytes(out: Path) -> dict[str, bytes]:
    files = {n: (out / n).read_bytes() for n in PROTOCOL_FILES if n != "summary.json"}
    files.update({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "aligned").rglob("*.png"))})
    summary = {
        k: v
        for k, v in json.loads((out / "summary.json").read_text()).items()
        if k not in ("seconds", "alignment_this_run")
    }
    files["summary.json"] = json.dumps(summary).encode()
    return files


def run_kills(work: Path, detector) -> list[dict]:
    """Kill prepare inside the protocol-file writer after k files; load must refuse, a rerun must be identical."""
    from experiments.face_expression.config import ExperimentConfig
    from experiments.face_expression.data import load_prepared

    raw = ck_tree(work / "raw")
    kw = {"image_size": 64, "num_folds": 2, "progress": False, "detector": detector}
    prepare_ckplus(raw, work / "clean", **kw)
    clean = _protocol_bytes(work / "clean")
    rows = []
    real = publish.write_atomic
    points = [(k, 0, False) for k in range(len(PROTOCOL_FILES) + 1)] + [(3, 1, True)]
    for k, seed, over_complete in points:
        out = work / f"killed{k}-{seed}"
        if over_complete:
            shutil.copytree(work / "clean", out)
        written = []

        def dying(path, data, k=k, written=written):
            if len(written) == k:
                raise _Killed(path.name)
            real(path, data)
            written.append(path.name)

        publish.write_atomic = dying
        try:
            prepare_ckplus(raw, out, seed=seed, **kw)
        except _Killed:
            pass
        finally:
            publish.write_atomic = real
        where = f"after {k} of {len(PROTOCOL_FILES)} protocol files" + (
            ", re-preparing a complete dataset with another seed" if over_complete else ""
        )
        try:
            load_prepared(ExperimentConfig.load("tiny").override(dataset="ckplus", data_dir=str(out)))
            refused, detail = False, "loaded"
        except IncompleteDatasetError as err:
            refused, detail = _one_line(err), str(err)[:160]
        prepare_ckplus(raw, out, **kw)
        identical = _protocol_bytes(out) == clean
        rows.append(
            {"case": f"killed {where}", "refused": refused, "identical_after_rerun": identical, "detail": detail}
        )
    return rows


def run_synthfaces_checks(work: Path) -> list[dict]:
    """Options refused before any image is generated (and a folder of other settings is never mixed)."""
    rows = []
    for name, kw, part in (
        ("synthfaces --num-folds 1", {"num_identities": 4, "num_folds": 1}, "num_folds must be"),
        ("synthfaces: more folds than identities", {"num_identities": 3, "num_folds": 4}, "cannot split 3 subjects"),
        (
            "synthfaces: other settings into a prepared folder",
            {"num_identities": 4, "num_folds": 2, "image_size": 24},
            "other settings",
        ),
    ):
        out = work / f"synth{len(rows)}"
        if "other settings" in part:
            prepare_synthfaces(
                out,
                num_identities=4,
                num_folds=2,
                sequences_per_identity=2,
                frames_per_sequence=4,
                image_size=16,
                workers=1,
                progress=False,
            )
        before = _image_files(out) if out.exists() else 0
        row = {"case": name, "dataset": "synthfaces", "expected": "error", "simulated": False}
        try:
            prepare_synthfaces(
                out,
                workers=1,
                progress=False,
                **{"sequences_per_identity": 2, "frames_per_sequence": 4, "image_size": 16, **kw},
            )
            row["outcome"], row["detail"] = "no error", "prepare finished"
        except (ValueError, FileNotFoundError) as err:
            after = _image_files(out) if out.exists() else 0
            ok = _one_line(err) and part in str(err) and after == before
            row["outcome"] = "clear error" if ok else "traceback"
            row["detail"] = str(err)[:160] + ("" if after == before else f" ({after - before} images made first)")
        rows.append(row)
    return rows


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU VM ({cpu}), Python {platform.python_version()}"


def report(rows: list[dict], kills: list[dict], detector: str, seconds: float) -> str:
    counts = Counter(r["outcome"] for r in rows)
    handled = counts["reject row"] + counts["note"] + counts["counted"]
    silent = counts["silent drop"]
    tracebacks = sum(
        v for k, v in counts.items() if k not in ("reject row", "note", "counted", "clear error", "silent drop")
    )
    identical = sum(k["refused"] and k["identical_after_rerun"] for k in kills)
    lines = [
        "# Data preparation probe",
        "",
        f"Generated by `python -m data_prep.probe --detector {detector}` on a {machine()}, "
        f"{time.strftime('%Y-%m-%d')}, {seconds:.0f} s. Do not edit: rerun the command.",
        "",
        f"**{len(rows)} bad inputs tried: {handled} handled in the data ({counts['reject row']} reject rows, "
        f"{counts['note']} converted with a note, {counts['counted']} counted as hidden), "
        f"{counts['clear error']} clear one-line errors, {tracebacks} tracebacks or unexpected errors, "
        f"{silent} silent drops. {len(kills)} interruptions of the protocol files: {identical} refused on load and "
        f"completed by a rerun to byte-identical files.**",
        "",
        f"Detector: {'MTCNN (mtcnn package)' if detector == 'mtcnn' else 'stand-in (one central face)'}. "
        + (
            "Permission faults are simulated (the probe ran as root, which reads any file)."
            if ROOT_USER
            else "Permission faults are real (chmod 0)."
        ),
        "",
        "| case | dataset | expected | outcome | detail |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        case = r["case"] + (" (simulated)" if r.get("simulated") else "")
        detail = str(r["detail"]).replace("|", "\\|")
        lines.append(f"| {case} | {r['dataset']} | {r['expected']} | {r['outcome']} | {detail} |")
    lines += ["", "| interruption | load refused | rerun byte-identical | load said |", "|---|---|---|---|"]
    for k in kills:
        lines.append(
            f"| {k['case']} | {k['refused']} | {k['identical_after_rerun']} | {k['detail'].replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/data_probe.md", help="report (Markdown; default docs/data_probe.md)")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--detector", choices=("mtcnn", "stand-in"), default="mtcnn")
    p.add_argument("--only", default=None, help="run the cases whose name contains this text (and no kill cases)")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    if a.detector == "mtcnn":
        from .mtcnn_align import load_detector

        detector = load_detector()
    else:
        detector = StandInDetector()
    cases = [c for c in CASES if a.only is None or a.only in c[0]]
    with tempfile.TemporaryDirectory(prefix="data-probe-") as tmp:
        rows = []
        for i, case in enumerate(cases):
            work = Path(tmp) / f"case{i:02d}"
            work.mkdir()
            rows.append(run_case(case, work, detector))
            print(f"[{rows[-1]['outcome']}] {case[0]}: {rows[-1]['detail'][:100]}", flush=True)
        if a.only is None:
            rows += run_synthfaces_checks(Path(tmp) / "synth")
            kills = run_kills(Path(tmp) / "kills", detector)
        else:
            kills = []
        for r in rows + kills:  # the report names no temporary folder
            r["detail"] = str(r["detail"]).replace(tmp, "$TMP")
    text = report(rows, kills, a.detector, time.perf_counter() - t0)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"cases": rows, "kills": kills}, indent=2) + "\n")
    print(text.splitlines()[4])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
