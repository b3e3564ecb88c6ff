"""One-folder-per-identity layouts: every bad entry is counted and reported, never dropped silently."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest

from data_prep.identity_folders import LayoutError, check_image, scan_identity_folders, write_scan_report


def _png(path, seed=0, size=20):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)


def _jpeg_bytes(seed=0):
    img = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", img)[1].tobytes()


@pytest.fixture
def messy(tmp_path):
    root = tmp_path / "faces"
    for ident in ("alice", "bob"):
        for j in range(3):
            _png(root / ident / f"{ident}_{j + 1:04d}.png", seed=j)
    (root / "bob" / "bob_0004.jpg").write_bytes(_jpeg_bytes())
    _png(root / "carol" / "carol_0001.png")  # single-image identity
    (root / "alice" / "alice_0009.jpg").write_bytes(b"definitely not a jpeg")  # unreadable
    (root / "alice" / "alice_0010.png").write_bytes(b"")  # empty
    (root / "bob" / "bob_0005.jpg").write_bytes(_jpeg_bytes()[:300])  # truncated
    (root / "bob" / "notes.txt").write_text("hi")  # not an image
    (root / "bob" / "scan.tif").write_bytes(b"II*\x00")  # not decodable by TF
    (root / "bob" / "extra").mkdir()  # nested folder
    (root / "dave").mkdir()  # empty identity
    (root / "stray.jpg").write_bytes(_jpeg_bytes())  # outside identity folders
    (root / "alice" / ".DS_Store").write_bytes(b"\x00")  # hidden: skipped, counted
    return root


def test_every_bad_entry_is_counted_and_reported(messy, tmp_path):
    scan = scan_identity_folders(messy, progress=False)
    assert scan.identities == ["alice", "bob"]
    assert sorted(scan.images["path"]) == sorted(
        [f"alice/alice_{j:04d}.png" for j in (1, 2, 3)]
        + [f"bob/bob_{j:04d}.png" for j in (1, 2, 3)]
        + ["bob/bob_0004.jpg"]
    )
    assert scan.images.groupby("identity")["label"].first().to_dict() == {"alice": 0, "bob": 1}
    reasons = scan.rejects.groupby("reason")["path"].apply(sorted).to_dict()
    assert reasons == {
        "empty_identity": ["dave"],
        "nested_folder": ["bob/extra"],
        "not_an_image": ["bob/notes.txt"],
        "outside_identity_folder": ["stray.jpg"],
        "too_few_images": ["carol/carol_0001.png"],
        "unreadable": ["alice/alice_0009.jpg", "alice/alice_0010.png", "bob/bob_0005.jpg"],
        "unsupported_format": ["bob/scan.tif"],
    }
    summary = write_scan_report(scan, tmp_path / "report")
    assert summary["rejects"] == 9 and summary["rejects_by_reason"]["unreadable"] == 3
    assert summary["hidden_files_skipped"] == 1 and summary["rejected_identities"] == ["carol", "dave"]
    on_disk = pd.read_csv(tmp_path / "report" / "rejects.csv")
    assert len(on_disk) == 9 and set(on_disk.columns) == {"path", "identity", "reason", "detail"}
    assert json.loads((tmp_path / "report" / "layout_summary.json").read_text())["images"] == 7


def test_header_check_is_cheaper_but_still_catches_non_images(messy):
    scan = scan_identity_folders(messy, verify="header", progress=False)
    unreadable = sorted(scan.rejects.loc[scan.rejects["reason"] == "unreadable", "path"])
    assert unreadable == ["alice/alice_0009.jpg", "alice/alice_0010.png"]  # the truncated JPEG needs decode
    assert check_image(messy / "bob" / "bob_0005.jpg", "decode").startswith(("truncated", "cannot decode"))


def test_strict_mode_and_unusable_layouts_raise(messy, tmp_path):
    with pytest.raises(LayoutError, match="9 rejected entries.*too_few_images"):
        scan_identity_folders(messy, strict=True, progress=False)
    with pytest.raises(LayoutError, match="not found"):
        scan_identity_folders(tmp_path / "nope", progress=False)
    flat = tmp_path / "flat"
    _png(flat / "a.png")
    with pytest.raises(LayoutError, match="no identity folders"):
        scan_identity_folders(flat, progress=False)
    singles = tmp_path / "singles"
    for ident in ("a", "b", "c"):
        _png(singles / ident / "1.png")
    with pytest.raises(LayoutError, match="0 usable identities.*too_few_images"):
        scan_identity_folders(singles, progress=False)
    assert scan_identity_folders(singles, min_images=1, progress=False).num_identities == 3
