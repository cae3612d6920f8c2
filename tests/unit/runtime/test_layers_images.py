"""Layers read as overlayfs writes them (whiteouts, opaque dirs), the image store and tar import.

Whiteouts are real 0:0 character devices and opaque markers real trusted.* xattrs, so these tests
need root (as the runtime does); the trees are built here, no overlay is mounted.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from hostwatch.core.units import human_size
from runtime import layers
from runtime.image_tar import TarError, extract
from runtime.images import ImageError, ImageStore, normalize


def tree(root: Path, files: dict[str, str | None]) -> Path:
    """path -> text; None makes a directory."""
    for rel, text in files.items():
        p = root / rel
        if text is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    return root


def whiteout(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, layers.OPAQUE_XATTR, b"y")


@pytest.fixture
def image(tmp_path: Path) -> list[str]:
    base = tree(tmp_path / "base", {"etc/passwd": "root\n", "etc/group": "g\n", "bin/sh": "#!", "var/lib/x": "x",
                                    "opt/keep": "k"})
    top = tree(tmp_path / "top", {"etc/motd": "hi\n"})
    whiteout(top / "bin" / "sh")  # the top layer deleted /bin/sh
    opaque(top / "var")  # and replaced /var with an empty directory
    return [str(top), str(base)]  # overlay order: top first


def test_lookup_reads_the_union_of_the_lower_layers(image: list[str]) -> None:
    assert layers.lookup(image, "etc/passwd") is not None and layers.lookup(image, "etc/motd") is not None
    assert layers.lookup(image, "bin/sh") is None  # whited out above
    assert layers.lookup(image, "bin") is not None
    assert layers.lookup(image, "var/lib/x") is None  # hidden by the opaque /var
    assert layers.lookup(image, "var") is not None and layers.lookup(image, "nope") is None


def test_changes_as_docker_diff_reports_them(image: list[str], tmp_path: Path) -> None:
    upper = tree(tmp_path / "upper", {"etc/passwd": "root\nme\n", "new/file": "n", "opt": None})
    os.chmod(upper / "opt", 0o700)  # a metadata change of a directory
    whiteout(upper / "etc" / "group")
    whiteout(upper / "etc" / "never-there")  # a whiteout of nothing in the image is no change
    opaque(upper / "etc" / "sub")  # a new opaque directory: added
    assert [str(c) for c in layers.changes(str(upper), image)] == [
        "C /etc", "D /etc/group", "C /etc/passwd", "A /etc/sub", "A /new", "A /new/file", "C /opt"]


def test_an_opaque_directory_deletes_what_it_hides(image: list[str], tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    opaque(upper / "etc")
    (upper / "etc" / "passwd").write_text("replaced")
    assert [str(c) for c in layers.changes(str(upper), image)] == [
        "C /etc", "D /etc/group", "D /etc/motd", "C /etc/passwd"]
    assert layers.changes(str(tree(tmp_path / "empty", {})), image) == []


def test_size_counts_file_bytes_and_hard_links_once(tmp_path: Path) -> None:
    top = tree(tmp_path / "t", {"a": "x" * 1000, "d/b": "y" * 24, "d/e": None})
    os.link(top / "a", top / "d" / "a-again")
    os.symlink("a", top / "link")
    whiteout(top / "gone")
    assert layers.size(top) == 1000 + 24 + 1  # the symlink counts its target's length, as Docker's
    assert human_size(0) == "0B" and human_size(123_457) == "123kB"
    assert human_size(1_984_234) == "1.98MB" and human_size(999) == "999B"


def test_copy_layer_keeps_whiteouts_opaque_markers_links_and_owners(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"etc/f": "data", "etc/sub": None})
    whiteout(src / "etc" / "gone")
    opaque(src / "etc" / "sub")
    os.setxattr(src / "etc" / "f", "trusted.overlay.origin", b"private")
    os.link(src / "etc" / "f", src / "f-link")
    os.symlink("/etc/f", src / "abs-link")
    os.chown(src / "etc" / "f", 1234, 5678)
    os.chmod(src / "etc" / "f", 0o4755)
    dst = tmp_path / "dst"
    layers.copy_layer(str(src), str(dst))
    assert layers.is_whiteout(str(dst / "etc" / "gone"), os.lstat(dst / "etc" / "gone"))
    assert layers.is_opaque(str(dst / "etc" / "sub"))
    assert "trusted.overlay.origin" not in os.listxattr(dst / "etc" / "f")
    st = os.stat(dst / "etc" / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4755)
    assert os.stat(dst / "f-link").st_ino == st.st_ino
    assert os.readlink(dst / "abs-link") == "/etc/f"
    assert (dst / "etc" / "f").read_text() == "data"


def test_overlay_options_and_the_upper_filesystem(tmp_path: Path) -> None:
    assert layers.mount_options(["/l2", "/l1"], "/u", "/w") == "lowerdir=/l2:/l1,upperdir=/u,workdir=/w"
    with pytest.raises(layers.LayerError, match="':'"):
        layers.mount_options(["/a:b"], "/u", "/w")
    with pytest.raises(layers.LayerError, match="too many layers"):
        layers.mount_options([f"/{'x' * 200}/{i}" for i in range(30)], "/u", "/w")
    layers.check_upper_fs(tmp_path)  # whatever the test machine's /tmp is, it is not an overlay here
    assert layers.fs_type("/proc") == 0x9FA0  # PROC_SUPER_MAGIC: the statfs reading itself is right


def test_image_store_names_layers_and_removal(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    assert normalize("busybox") == "busybox:latest" and normalize("my/app:1.0") == "my/app:1.0"
    for bad in ("Upper", "a b", "", "x:"):
        with pytest.raises(ImageError, match="invalid reference format"):
            normalize(bad)
    with store.new_layer() as (base_id, diff):
        tree(diff, {"bin/sh": "sh"})
    with pytest.raises(RuntimeError), store.new_layer() as (_failed, diff):
        diff.mkdir()
        raise RuntimeError("interrupted")
    assert os.listdir(store.layers_dir) == [base_id]  # a failed build leaves nothing
    base = store.add("base", [base_id])
    with store.new_layer() as (top_id, diff):
        tree(diff, {"etc/x": "12345"})
    child = store.add("child:v1", [base_id, top_id], parent=base.id)
    assert store.get("child:v1").layers == [base_id, top_id] and store.get(child.id[:12]).name == "child:v1"
    assert store.lower_dirs(child) == [str(store.layer_dir(top_id)), str(store.layer_dir(base_id))]
    assert child.size == 2 + 5
    with pytest.raises(ImageError, match="No such image: nope"):
        store.get("nope")
    users = {str(store.layer_dir(top_id)): "ctr"}
    with pytest.raises(ImageError, match="container ctr is using"):
        store.remove("child:v1", users)
    store.remove("child:v1", users, force=True)
    assert store.layer_dir(top_id).is_dir()  # a container still reads it
    store.remove("base", users)  # the in-use map comes from the containers at every removal
    assert sorted(os.listdir(store.layers_dir)) == [top_id]
    store.collect_garbage(set())
    assert os.listdir(store.layers_dir) == [] and store.all() == []


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def test_extract_keeps_what_an_image_needs(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "ok.tar.gz", [
        (_info("./"), b""), (_info("./bin", tarfile.DIRTYPE, mode=0o755), b""),
        (_info("./bin/su", mode=0o4755, uid=0, gid=0, uname="nosuchuser"), b"su"),
        (_info("./bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"), b""),
        (_info("./bin/also-su", tarfile.LNKTYPE, linkname="./bin/su", mode=0o4755), b""),
        (_info("./home/u/f", uid=4242, gid=4343), b"f"),
    ])
    dest = tmp_path / "layer"
    assert extract(archive, dest) == 5
    assert stat.S_IMODE(os.stat(dest / "bin" / "su").st_mode) == 0o4755  # setuid kept
    assert os.readlink(dest / "bin" / "sh") == "/bin/busybox"  # absolute: read inside the container
    assert os.stat(dest / "bin" / "also-su").st_ino == os.stat(dest / "bin" / "su").st_ino
    assert (os.stat(dest / "home" / "u" / "f").st_uid, os.stat(dest / "home" / "u" / "f").st_gid) == (4242, 4343)


@pytest.mark.parametrize(("members", "message"), [
    ([(_info("../escape"), b"x")], "outside the image"),
    ([(_info("a/../../escape"), b"x")], "outside the image"),
    ([(_info("link", tarfile.LNKTYPE, linkname="../../etc/passwd"), b"")], "outside the image"),
    ([(_info("etc", tarfile.SYMTYPE, linkname="/etc"), b""), (_info("etc/passwd"), b"x")], "below the symlink etc"),
    ([(_info("etc", tarfile.SYMTYPE, linkname="/etc"), b""),
      (_info("stolen", tarfile.LNKTYPE, linkname="etc/shadow"), b"")], "below the symlink etc"),
])
def test_extract_refuses_what_would_leave_the_layer(tmp_path: Path, members: list, message: str) -> None:
    with pytest.raises(TarError, match=message):
        extract(_tar(tmp_path / "evil.tar.gz", members), tmp_path / "layer")
    assert not (tmp_path / "escape").exists()
