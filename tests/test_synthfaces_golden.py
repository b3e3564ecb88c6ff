"""synthfaces draws the same bytes as when tests/data/synthfaces_digests.json was stored (tests/synthfaces_golden.py).

The study's numbers were produced with these images, so a change to the generator's code must not move
one pixel, one attribute draw or one CSV cell unless it is meant to (then regenerate the digests).
"""

from __future__ import annotations

import json

import synthfaces_golden


def test_synthfaces_bytes_match_the_stored_digests():
    stored = json.loads(synthfaces_golden.PATH.read_text())
    now = synthfaces_golden.digests()
    assert sorted(now) == sorted(stored), "the set of rendered cases changed"
    changed = sorted(k for k in stored if now[k] != stored[k])
    assert not changed, f"{len(changed)} of {len(stored)} cases differ, e.g. {changed[:5]}"
