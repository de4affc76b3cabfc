"""Student-controlled text shown on the instructor's terminal and stored in the gradebook."""

from __future__ import annotations

import os

from autograder.display import printable, storable


def test_escape_sequences_become_visible_text() -> None:
    clip = "\x1b]52;c;ZWNobyBwd25lZA==\x07n_clip"  # OSC 52: would write the clipboard
    assert printable(clip) == "\\x1b]52;c;ZWNobyBwd25lZA==\\x07n_clip"
    assert printable("\x1b[2J\x9b2J\x7f") == "\\x1b[2J\\x9b2J\\x7f"
    assert printable("a\r b\x00") == "a\\x0d b\\x00"


def test_layout_and_unicode_are_kept() -> None:
    text = "Zoë's résumé\tscore\n€ 😀"
    assert printable(text) == text
    assert storable(text) == text


def test_undecodable_file_name_bytes_are_shown_as_bytes() -> None:
    name = os.fsdecode(b"r\xe9sum\xe9.ipynb")
    assert printable(name) == "r\\xe9sum\\xe9.ipynb"
    assert storable(name) == "r\\xe9sum\\xe9.ipynb"
    assert storable(name).encode("utf-8")  # no lone surrogate left


def test_other_lone_surrogates_are_escaped() -> None:
    assert storable("a\ud800b\udfff") == "a\\ud800b\\udfff"
    assert storable(None) is None
