"""Copy-on-write layers, for real as root: every rootfs container on its own overlay upper layer,
images as layers in the store (rootfs, import, commit, rmi), diff, sizes, read-only roots."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostwatch_cli import HW

BUSYBOX = "busybox"


@pytest.fixture
def image(hw: HW, busybox_rootfs: Path) -> str:
    """The session's busybox rootfs registered as image "busybox" in hw's own image store."""
    hw("rootfs", str(busybox_rootfs), check=True)
    return BUSYBOX


def image_dir(hw: HW, name: str) -> Path:
    """The image's top layer directory, read from the store's index."""
    index = json.loads((hw.state_root.parent / "images" / "repositories.json").read_text())
    return hw.state_root.parent / "images" / "layers" / index[f"{name}:latest"]["layers"][-1] / "diff"


def mounts_of(pid: int | str) -> str:
    return Path(f"/proc/{pid}/mountinfo").read_text()


def test_a_write_stays_in_the_container_layer(hw: HW, image: str, busybox_rootfs: Path) -> None:
    for source in (("--image", image), ("--rootfs", str(busybox_rootfs))):
        proc = hw("run", "--rm", *source, "--", "sh", "-c", "echo leaked > /leak.txt; cat /leak.txt", check=True)
        assert proc.stdout == "leaked\n"
        second = hw("run", "--rm", *source, "--", "sh", "-c", "cat /leak.txt || echo absent")
        assert second.stdout == "absent\n", second.stderr
    assert not (busybox_rootfs / "leak.txt").exists()
    assert not (image_dir(hw, image) / "leak.txt").exists()


def test_diff_lists_added_changed_and_deleted(hw: HW, image: str) -> None:
    script = ("echo new > /added.txt; echo changed >> /etc/hostname; rm /etc/group; mkdir -p /d/e; "
              "echo x > /d/e/f; rm -rf /root && mkdir /root; touch /root/fresh; "
              "rm -rf /tmp && mkdir /tmp && chmod 1777 /tmp")
    hw("run", "--name", "changer", "--image", image, "--", "sh", "-c", script, check=True)
    assert hw("diff", "changer", check=True).stdout.splitlines() == [
        "A /added.txt", "A /d", "A /d/e", "A /d/e/f",
        "C /etc", "D /etc/group", "C /etc/hostname",
        "C /root", "A /root/fresh",
    ]  # /tmp recreated alike (an opaque directory hiding nothing) is no change, as in `docker diff`
    # an opaque directory hides the image's entries below it: each is reported deleted
    hw("run", "--name", "wiper", "--image", image, "--", "sh", "-c", "rm -rf /etc; mkdir /etc; echo n > /etc/new",
       check=True)
    upper = Path(hw.inspect("wiper")["GraphDriver"]["Data"]["UpperDir"])
    assert os.getxattr(upper / "etc", "trusted.overlay.opaque") == b"y"
    assert hw("diff", "wiper", check=True).stdout.splitlines() == [
        "C /etc", "D /etc/group", "D /etc/hostname", "A /etc/new", "D /etc/passwd"]


def test_commit_then_run_the_new_image(hw: HW, image: str) -> None:
    hw("run", "--name", "maker", "--image", image, "--", "sh", "-c", "echo kept > /kept.txt; rm /etc/group",
       check=True)
    out = hw("commit", "maker", "made:v1", check=True).stdout.strip()
    assert out.startswith("sha256:") and len(out) == 71
    images = hw("images", check=True).stdout
    assert "made" in images and "v1" in images and out[7:19] in images
    proc = hw("run", "--rm", "--image", "made:v1", "--", "sh", "-c", "cat /kept.txt; ls /etc/group || echo gone",
              check=True)
    assert proc.stdout == "kept\ngone\n", proc.stderr  # the committed whiteout still hides the image's file
    hw("run", "--name", "child", "--image", "made:v1", "--", "true", check=True)
    doc = hw.inspect("child")
    assert doc["Image"] == out and doc["Config"]["Image"] == "made:v1"
    assert len(doc["GraphDriver"]["Data"]["LowerDir"].split(":")) == 2  # busybox's layer and the committed one


def test_inspect_graph_driver_and_rm_leaves_no_overlay(hw: HW, image: str) -> None:
    cid = hw("run", "-d", "--name", "layered", "--image", image, "--", "sleep", "60", check=True).stdout.strip()
    doc = hw.inspect(cid)
    data = doc["GraphDriver"]["Data"]
    assert doc["GraphDriver"]["Name"] == "overlay2"
    assert data["LowerDir"] == str(image_dir(hw, image))
    home = hw.state_root / cid
    assert (data["UpperDir"], data["WorkDir"], data["MergedDir"]) == (str(home / "upper"), str(home / "work"),
                                                                      str(home / "merged"))
    root = [line for line in mounts_of(doc["State"]["Pid"]).splitlines() if line.split()[4] == "/"]
    assert len(root) == 1 and " - overlay overlay " in root[0] and f"upperdir={data['UpperDir']}" in root[0], root
    assert cid not in mounts_of("self")  # the union is the container's own: nothing on the host's table
    hw("rm", "-f", cid, check=True)
    assert not home.exists()
    gone = [p for p in (data["UpperDir"], data["WorkDir"], data["MergedDir"]) if os.path.exists(p)]
    assert gone == []
    assert cid not in mounts_of("self")
    assert image_dir(hw, image).is_dir()  # the image stays


def test_size_rw_grows_by_the_bytes_written(hw: HW, image: str) -> None:
    written = 123_457
    hw("run", "--name", "idle", "--image", image, "--", "true", check=True)
    hw("run", "--name", "writer", "--image", image, "--", "sh", "-c", f"head -c {written} /dev/zero > /blob",
       check=True)
    idle = json.loads(hw("inspect", "--size", "idle", check=True).stdout)[0]
    writer = json.loads(hw("inspect", "--size", "writer", check=True).stdout)[0]
    assert writer["SizeRw"] - idle["SizeRw"] == written
    assert writer["SizeRootFs"] - idle["SizeRootFs"] == written
    assert idle["SizeRootFs"] > 1_000_000  # the busybox layer below
    assert "SizeRw" not in hw.inspect("writer")  # as Docker: only with --size
    ps = hw("ps", "-a", "-s", check=True).stdout.splitlines()
    assert ps[0].split()[-1] == "SIZE"
    row = next(line for line in ps if line.rstrip().endswith(")") and "writer" in line)
    assert "123kB (virtual " in row, row


def test_import_a_tarball_made_with_tar(hw: HW, busybox_rootfs: Path, tmp_path: Path) -> None:
    for name, flags in (("plain", "-cf"), ("gzipped", "-czf")):
        archive = tmp_path / f"{name}.tar"
        subprocess.run(["tar", "-C", str(busybox_rootfs), flags, str(archive), "."], check=True)
        assert hw("import", str(archive), name, check=True).stdout.startswith("sha256:")
        proc = hw("run", "--rm", "--image", name, "--", "sh", "-c", "echo hello from $0; ls -l /bin/sh", check=True)
        assert proc.stdout.startswith("hello from sh\n") and "/bin/sh -> busybox" in proc.stdout
    assert {line.split()[0] for line in hw("images").stdout.splitlines()[1:]} == {"plain", "gzipped"}


def test_import_refuses_what_would_escape_the_layer(hw: HW, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        link = tarfile.TarInfo("etc")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path / "outside")
        tar.addfile(link)
        data = tarfile.TarInfo("etc/passwd")
        tar.addfile(data)
    (tmp_path / "outside").mkdir()
    proc = hw("import", str(evil), "evil")
    assert proc.returncode == 1 and "below the symlink etc" in proc.stderr, proc.stderr
    assert os.listdir(tmp_path / "outside") == []
    assert "evil" not in hw("images").stdout
    not_tar = tmp_path / "not.tar"
    not_tar.write_text("hello")
    proc = hw("import", str(not_tar), "broken")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_volume_binds_over_the_merged_view(hw: HW, image: str, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    hw("run", "--name", "volumed", "--image", image, "-v", f"{vol}:/data", "--", "sh", "-c",
       "echo via-volume > /data/f; echo via-layer > /g", check=True)
    assert (vol / "f").read_text() == "via-volume\n"
    changes = hw("diff", "volumed", check=True).stdout.splitlines()
    assert "A /g" in changes and "A /data/f" not in changes


def test_read_only_root_with_a_writable_tmpfs(hw: HW, image: str) -> None:
    proc = hw("run", "--name", "ro", "--read-only", "--tmpfs", "/tmp", "--image", image, "--", "sh", "-c",
              "touch /x 2>&1; echo t > /tmp/y && cat /tmp/y; grep ' /tmp ' /proc/mounts")
    lines = proc.stdout.splitlines()
    assert "Read-only file system" in lines[0], proc.stdout
    assert lines[1] == "t"
    assert lines[2].startswith("tmpfs /tmp tmpfs rw,nosuid,nodev,noexec"), lines
    host_config = hw.inspect("ro")["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True and host_config["Tmpfs"] == {"/tmp": ""}
    assert hw("diff", "ro", check=True).stdout == ""


def test_rmi_keeps_layers_a_container_uses(hw: HW, image: str) -> None:
    hw("run", "--name", "user", "--image", image, "--", "true", check=True)
    layer = image_dir(hw, image)
    refused = hw("rmi", image)
    assert refused.returncode == 1 and "container user is using" in refused.stderr
    assert hw("rmi", "-f", image, check=True).stdout.startswith("Untagged: busybox:latest")
    assert layer.is_dir()  # still the container's lower layer
    assert hw("run", "--rm", "--image", image, "--", "true").returncode == 125  # the name is gone
    hw("rm", "user", check=True)
    hw("rootfs", "--name", "other", check=True)  # any later rmi collects what nothing references
    hw("rmi", "other", check=True)
    assert not layer.exists()


@pytest.fixture
def overlay_state_root(tmp_path: Path) -> Iterator[Path]:
    """A state root on overlayfs, as a container's or chroot's /tmp can be."""
    parts = {n: tmp_path / n for n in ("lower", "upper", "work", "merged")}
    for p in parts.values():
        p.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={parts['lower']},upperdir={parts['upper']},workdir={parts['work']}",
                    str(parts["merged"])], check=True)
    try:
        yield parts["merged"] / "state"
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(parts["merged"])], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


def test_a_state_root_on_overlayfs_fails_with_one_line(overlay_state_root: Path, busybox_rootfs: Path) -> None:
    hw = HW(overlay_state_root)
    proc = hw("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "true")
    assert proc.returncode == 125, proc.stderr
    assert proc.stderr.count("\n") == 1 and "overlayfs" in proc.stderr and "HOSTWATCH_STATE_ROOT" in proc.stderr
    assert [e for e in os.listdir(overlay_state_root) if not e.startswith(".")] == []  # .lock only
    host = hw("run", "--rm", "--", "true")  # a container on the host's filesystem needs no layer
    assert host.returncode == 0, host.stderr
    hw.cleanup()
