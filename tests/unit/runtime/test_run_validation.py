from pathlib import Path

import pytest

from hostwatch.core.containers import ContainerState
from runtime.images import ImageStore
from runtime.run import RunOptions, UsageError, build_state
from runtime.state import StateError, StateStore


def _state(store: StateStore, **kw: object) -> ContainerState:
    opts = RunOptions(command=["sh", "-c", "true"])
    for k, v in kw.items():
        setattr(opts, k, v)
    return build_state(opts, store, "f" * 64, ImageStore(store.root.parent / "images"))


@pytest.mark.parametrize(("kw", "message"), [
    ({"memory": "12q"}, "invalid size"),
    ({"memory": "1m"}, "minimum memory"),
    ({"cpus": "x"}, "--cpus"),
    ({"name": "a/b"}, "invalid container name"),
    ({"name": ".."}, "invalid container name"),
    ({"name": "x..y"}, "invalid container name"),
    ({"rootfs": "/definitely/not/here"}, "does not exist"),
    ({"volumes": ["relative:/x"]}, "absolute"),
    ({"volumes": ["/tmp"]}, "HOST:CONTAINER"),
    ({"volumes": ["/tmp:/x:rx"]}, "HOST:CONTAINER"),
    ({"labels": ["novalue"]}, "KEY=VALUE"),
    ({"net": "overlay"}, "--net"),
    ({"command": []}, "requires a command"),
    ({"log_driver": "syslog"}, "syslog"),
    ({"log_opts": ["max-size=lots"]}, "max-size"),
    ({"log_opts": ["no-such-opt=1"]}, "no-such-opt"),
    ({"image": "nope"}, "No such image: nope"),
    ({"image": "nope", "rootfs": "/"}, "mutually exclusive"),
    ({"read_only": True}, "--read-only needs a root filesystem"),
    ({"cap_add": ["CAP_NOPE"]}, "unknown capability"),
    ({"security_opt": ["seccomp=/no/such/profile.json"]}, "opening seccomp profile"),
    ({"security_opt": ["label=disable"]}, "Invalid --security-opt"),
    ({"ulimits": ["nofile=2:1"]}, "soft limit"),
    ({"tmpfs": ["tmp"]}, "absolute"),
    ({"user": "x y"}, "invalid --user"),
    ({"group_add": ["a b"]}, "invalid --group-add"),
])
def test_bad_input_is_a_usage_error(tmp_path: Path, kw: dict, message: str) -> None:
    store = StateStore(tmp_path / "state")
    with pytest.raises(UsageError, match=message):
        _state(store, **kw)
    assert not (tmp_path / "state").exists()


def test_state_from_flags(tmp_path: Path) -> None:
    rootfs = tmp_path / "busybox"
    rootfs.mkdir()
    store = StateStore(tmp_path / "state")
    st = _state(store, name="web", memory="64m", cpus="0.5", cpu_shares=512, pids_limit=20, cpuset_cpus="0",
                rootfs=str(rootfs), env=["A=1"], labels=["team=core"], volumes=[f"{tmp_path}:/data:ro"],
                log_opts=["max-size=1k", "max-file=3"])
    assert (st.name, st.image, st.rootfs, st.hostname) == ("web", "busybox", str(rootfs), "f" * 12)
    assert (st.limits.memory, st.limits.nano_cpus, st.limits.cpu_shares) == (64 << 20, 500_000_000, 512)
    assert st.volumes == [{"host": str(tmp_path), "container": "/data", "ro": True}]
    assert st.cgroup == "/hostwatch/" + "f" * 64
    assert st.log_path.endswith("f" * 64 + "-json.log")
    assert _state(store).image == "host"


def test_confinement_and_layers_from_flags(tmp_path: Path) -> None:
    rootfs = tmp_path / "busybox"
    rootfs.mkdir()
    store = StateStore(tmp_path / "state")
    st = _state(store, rootfs=str(rootfs), read_only=True, tmpfs=["/tmp:size=1m"], cap_drop=["ALL"],
                cap_add=["net_raw"], security_opt=["no-new-privileges"], user="1000:1000", ulimits=["nofile=8"])
    home = tmp_path / "state" / ("f" * 64)
    assert st.lower_dirs == [str(rootfs)] and st.upper_dir == str(home / "upper")
    assert (st.work_dir, st.merged_dir) == (str(home / "work"), str(home / "merged"))
    assert st.capabilities == ["CAP_NET_RAW"] and st.no_new_privileges and st.read_only
    assert st.seccomp_profile == str(home / "seccomp.json")
    assert st.tmpfs == {"/tmp": "size=1m"} and st.ulimits == [{"Name": "nofile", "Hard": 8, "Soft": 8}]
    host = _state(store, privileged=True)
    assert host.upper_dir == "" and host.seccomp_profile == "" and host.privileged
    assert _state(store, security_opt=["seccomp=unconfined"]).seccomp_profile == ""


def test_names_are_unique_and_resolvable(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    first = _state(store, name="web")
    store.create(first)
    with pytest.raises(StateError, match="already in use"):
        store.create(ContainerState(**{**first.__dict__, "id": "e" * 64}))
    assert store.resolve("web").id == first.id
    assert store.resolve("fff").id == first.id
    with pytest.raises(StateError, match="No such container"):
        store.resolve("nope")


def test_cli_constants_match_their_sources() -> None:
    from runtime import command, logdrivers, network

    assert command.LOG_DRIVERS == logdrivers.DRIVERS
    assert command.NET_MODES == network.MODES


def test_state_files_written_before_layers_and_confinement_still_load(tmp_path: Path) -> None:
    import json

    old = {"id": "e" * 64, "name": "old", "image": "busybox", "rootfs": "/srv/busybox", "command": ["true"],
           "hostname": "eeeeeeeeeeee", "limits": {"memory": None}, "status": "exited", "exit_code": 0}
    (tmp_path / "state" / old["id"]).mkdir(parents=True)
    (tmp_path / "state" / old["id"] / "config.json").write_text(json.dumps(old))
    st = StateStore(tmp_path / "state").load(old["id"])
    assert (st.upper_dir, st.lower_dirs, st.capabilities, st.seccomp_profile, st.privileged) == ("", [], [], "",
                                                                                                  False)
    assert json.loads(st.to_json())["upper_dir"] == ""  # and it is written back with the new fields
