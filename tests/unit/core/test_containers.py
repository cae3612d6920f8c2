import json
from pathlib import Path

from hostwatch.core.containers import ContainerState, Limits, list_containers
from hostwatch.core.timefmt import parse_rfc3339, rfc3339_nano


def test_rfc3339_nano_trims_trailing_zeros_like_go() -> None:
    assert rfc3339_nano(ns=1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_nano(ns=1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339_nano(ns=1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_parse_rfc3339_round_trip_and_offsets() -> None:
    assert parse_rfc3339("2023-11-14T22:13:20.5Z") == 1_700_000_000.5
    assert parse_rfc3339("2023-11-14T23:13:20+01:00") == 1_700_000_000
    assert parse_rfc3339("0001-01-01T00:00:00Z") is None
    assert parse_rfc3339("") is None


def _docker_config(cid: str) -> dict:
    return {
        "ID": cid, "Name": "/web", "Config": {"Image": "nginx:1.25", "Labels": {"team": "core"}},
        "State": {"Running": True, "Pid": 4242, "StartedAt": "2024-05-01T10:00:00.25Z"},
        "HostConfig": {"CgroupParent": ""}, "LogPath": f"/var/lib/docker/containers/{cid}/{cid}-json.log",
    }


def test_list_containers_reads_runtime_state_and_docker(tmp_path: Path) -> None:
    state_root, docker_root = tmp_path / "state", tmp_path / "docker"
    hid, did = "a" * 64, "b" * 64
    st = ContainerState(id=hid, name="demo", image="busybox", rootfs="/x/busybox", command=["sh"],
                        hostname="h", labels={"app": "demo"}, limits=Limits(memory=1 << 20),
                        cgroup=f"/hostwatch/{hid}", status="running", pid=99, started="2024-05-01T10:00:00Z")
    (state_root / hid).mkdir(parents=True)
    (state_root / hid / "config.json").write_text(st.to_json())
    (state_root / "broken").mkdir()
    (state_root / "broken" / "config.json").write_text("{half")
    (docker_root / did).mkdir(parents=True)
    (docker_root / did / "config.v2.json").write_text(json.dumps(_docker_config(did)))
    refs = list_containers(state_root, docker_root)
    assert [(r.source, r.name, r.image, r.cgroup, r.pid, r.running) for r in refs] == [
        ("hostwatch", "demo", "busybox", f"/hostwatch/{hid}", 99, True),
        ("docker", "web", "nginx:1.25", f"/docker/{did}", 4242, True),
    ]
    assert refs[0].labels == {"app": "demo"}
    assert refs[1].started_at == 1714557600.25


def test_state_round_trip_keeps_limits() -> None:
    st = ContainerState(id="c" * 64, name="n", image="host", rootfs=None, command=["true"], hostname="h",
                        limits=Limits(memory=5, nano_cpus=6, cpu_shares=7, pids_limit=8, cpuset_cpus="0"))
    back = ContainerState.from_dict(json.loads(st.to_json()))
    assert back == st
