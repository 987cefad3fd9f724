"""tools/create_lmdb_dataset.py packs only files inside --images, with or without --no-check."""

import os

import cv2
import numpy as np
import pytest

from fasttcm.data.datasets.str_lmdb import load_str_lmdb


def _png(seed):
    image = np.random.default_rng(seed).integers(0, 256, size=(10, 20, 3), dtype=np.uint8)
    return cv2.imencode(".png", image)[1].tobytes()


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("create_lmdb_dataset")


@pytest.fixture
def layout(tmp_path):
    """images/ with a.png, sub/b.png and an inside link; secret.png and a folder outside it."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.png").write_bytes(_png(0))
    (images / "sub" / "b.png").write_bytes(_png(1))
    os.symlink(images / "a.png", images / "inside_link.png")
    (tmp_path / "secret.png").write_bytes(_png(2))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "c.png").write_bytes(_png(3))
    os.symlink(tmp_path / "secret.png", images / "outside_link.png")
    os.symlink(tmp_path / "elsewhere", images / "linked_dir")
    return tmp_path


def _run(tool, layout, lines, *extra):
    labels = layout / "gt.txt"
    labels.write_text("".join(f"{line}\n" for line in lines))
    out = layout / "db"
    args = ["--images", str(layout / "images"), "--labels", str(labels), "--out", str(out)]
    return tool.main(args + list(extra)), out


def test_paths_inside_the_images_folder_are_packed(tool, layout, capsys):
    lines = ["a.png\tone", "sub/b.png\ttwo", "sub/../a.png\tthree", "inside_link.png\tfour"]
    code, out = _run(tool, layout, lines)
    assert code == 0, capsys.readouterr().err
    assert [d["text"] for d in load_str_lmdb(str(out))] == ["one", "two", "three", "four"]


@pytest.mark.parametrize("no_check", [False, True], ids=["checked", "no-check"])
@pytest.mark.parametrize(
    "entry, reason",
    [
        ("/etc/hostname", "is absolute"),
        ("{root}/secret.png", "is absolute"),
        ("../secret.png", "leads outside the images folder"),
        ("sub/../../secret.png", "leads outside the images folder"),
        ("outside_link.png", "leads outside the images folder"),
        ("linked_dir/c.png", "leads outside the images folder"),
    ],
)
def test_paths_leading_outside_are_errors_naming_file_and_line(
    tool, layout, capsys, entry, reason, no_check
):
    entry = entry.format(root=layout)
    lines = ["a.png\tfine", "", f"{entry}\tstolen"]
    code, out = _run(tool, layout, lines, *(["--no-check"] if no_check else []))
    err = capsys.readouterr().err
    assert code == 1
    assert f"{layout / 'gt.txt'}, line 3: image path {entry!r} {reason}" in err
    assert not out.exists()  # nothing written, not even the valid first entry
    assert not [p for p in layout.iterdir() if p.name.startswith(".db")]  # no temporary folder
