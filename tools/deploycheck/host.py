"""The host side of the check: Debian packages, a podman of the check's own (storage, configuration,
network definitions and API socket under ``state/deploycheck/``), and Docker Compose v2 built from
the Go module proxy.

Nothing here touches the user's podman storage or ``/etc/containers``: every podman command gets
``--root``/``--runroot`` and the environment variables ``CONTAINERS_CONF`` and
``CONTAINERS_STORAGE_CONF`` pointing at files under ``state/deploycheck/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

#: Debian packages the check needs (command -> package); installed with apt-get where missing.
DEBIAN_PACKAGES = {
    "podman": "podman",
    "runc": "runc",
    "netavark": "netavark",
    "aardvark-dns": "aardvark-dns",
    "slirp4netns": "slirp4netns",
    "fuse-overlayfs": "fuse-overlayfs",
    "uidmap": "uidmap",
    "catatonit": "catatonit",
    "iptables": "iptables",
    "mmdebstrap": "mmdebstrap",
    "chromium": "chromium",
    "chromium-driver": "chromium-driver",
}
COMPOSE_MODULE = "github.com/docker/compose/v2"
COMPOSE_VERSION = "v2.40.3"


class HostError(RuntimeError):
    """The host lacks something the check needs; the message says what to do."""


def missing_packages(packages: Sequence[str]) -> list[str]:
    """The Debian packages of ``packages`` that are not installed."""
    missing = []
    for package in packages:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in done.stdout:
            missing.append(package)
    return missing


def ensure_packages(packages: Sequence[str] = tuple(DEBIAN_PACKAGES.values())) -> list[str]:
    """Install the missing ones with apt-get (one ``apt-get update`` first); returns what was installed.

    Raises:
        HostError: Not Debian, not root (and no sudo), or apt-get failed.
    """
    missing = missing_packages(packages)
    if not missing:
        return []
    if not shutil.which("apt-get"):
        raise HostError(f"missing Debian packages {' '.join(missing)} and no apt-get: install them by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        raise HostError(f"missing packages {' '.join(missing)}: run as root, or install them with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        [*sudo, "apt-get", "update", "-qq"],
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise HostError(f"`{' '.join(argv)}` failed:\n{done.stderr[-2000:]}")
    return missing


def containers_conf(home: Path) -> str:
    """containers.conf of the check's podman: runc (crun fails here on setrlimit and on the hybrid
    cgroup layout), ulimits under conmon's hard nproc limit, cgroupfs and file events (no systemd),
    and network definitions and temporary state under ``home``."""
    return (
        "[containers]\n"
        'default_ulimits = ["nofile=20000:20000", "nproc=30000:30000"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{home / "podman" / "tmp"}"\n'
        "[network]\n"
        f'network_config_dir = "{home / "podman" / "networks"}"\n'
    )


def storage_conf(home: Path) -> str:
    """storage.conf of the check's podman: overlay, under ``home`` only."""
    return (
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{home / "podman" / "root"}"\n'
        f'runroot = "{home / "podman" / "runroot"}"\n'
    )


@dataclass
class Podman:
    """podman with the check's own storage root and configuration under ``home``."""

    home: Path

    def __post_init__(self) -> None:
        for sub in ("root", "runroot", "tmp", "networks"):
            (self.home / "podman" / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "containers.conf").write_text(containers_conf(self.home))
        (self.home / "storage.conf").write_text(storage_conf(self.home))

    @property
    def socket(self) -> Path:
        return self.home / "podman" / "api.sock"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every podman command (and of what the check starts that calls podman)."""
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.home / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.home / "storage.conf"),
        }

    def argv(self, *args: str) -> list[str]:
        root = self.home / "podman"
        return ["podman", "--root", str(root / "root"), "--runroot", str(root / "runroot"), *args]

    def run(
        self, *args: str, check: bool = True, timeout_s: float | None = None, quiet: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``; output captured (``quiet``) or shown.

        Raises:
            HostError: It failed and ``check`` is set.
        """
        done = subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=quiet,
            text=True,
            check=False,
            timeout=timeout_s,
        )
        if check and done.returncode != 0:
            tail = (done.stderr or "")[-3000:] if quiet else "(output above)"
            raise HostError(f"`podman {' '.join(args)}` exited {done.returncode}: {tail}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout or "null")

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def image_labels(self, name: str) -> dict[str, str]:
        info = self.json("image", "inspect", name)
        return dict((info[0].get("Labels") or {}) if info else {})

    def try_pull(self, name: str, timeout_s: float = 120) -> tuple[bool, str]:
        """``podman pull`` of a real image: ``(pulled, why not)``."""
        try:
            done = self.run("pull", "--quiet", name, check=False, timeout_s=timeout_s)
        except subprocess.TimeoutExpired:
            return False, f"no answer in {timeout_s:.0f} s"
        if done.returncode == 0:
            return True, ""
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return False, lines[-1] if lines else f"exit {done.returncode}"


class ApiService:
    """``podman system service`` on the check's socket, started and stopped by pid."""

    def __init__(self, podman: Podman, log: Path) -> None:
        self.podman = podman
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def docker_host(self) -> str:
        return f"unix://{self.podman.socket}"

    def start(self, timeout_s: float = 30) -> None:
        """Start the service and wait until its socket answers ``/_ping``.

        Raises:
            HostError: It did not answer in time.
        """
        self.podman.socket.unlink(missing_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.podman.argv("system", "service", "--time=0", self.docker_host),
                env=self.podman.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HostError(f"podman system service exited {self.process.returncode}; see {self.log}")
            if self.ping():
                return
            time.sleep(0.3)
        raise HostError(f"podman system service did not answer on {self.podman.socket} in {timeout_s:.0f} s")

    def ping(self) -> bool:
        done = subprocess.run(
            ["curl", "-s", "--max-time", "2", "--unix-socket", str(self.podman.socket), "http://d/_ping"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() == "OK"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_by_pid(self.process)


def stop_by_pid(process: subprocess.Popen[Any], timeout_s: float = 15) -> None:
    """SIGTERM to the process (only it: it runs in a session of its own), SIGKILL after ``timeout_s``."""
    with contextlib.suppress(psutil.NoSuchProcess):
        stop_processes([psutil.Process(process.pid)], timeout_s)
    process.wait(timeout=10)  # Popen learns that it ended


def conmons_under(storage: Path) -> list[psutil.Process]:
    """The ``conmon`` processes whose command line names ``storage``: the monitors podman started for
    this check's containers and exec sessions. podman 4.3 leaves an exec session's conmon (a
    ``podman healthcheck run``) behind once its container is gone."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if argv and Path(argv[0]).name == "conmon" and str(storage) in " ".join(argv):
            found.append(proc)
    return found


def stop_processes(procs: Sequence[psutil.Process], timeout_s: float = 5) -> None:
    """SIGTERM to each process, SIGKILL to those still running after ``timeout_s``."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def go_module_dir(module: str, version: str) -> Path:
    """``go mod download`` of ``module@version``; its directory in the module cache.

    Raises:
        HostError: No go, or the download failed.
    """
    if not shutil.which("go"):
        raise HostError("go (1.24+) not found; see https://go.dev/doc/install")
    done = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise HostError(f"go mod download {module}@{version} failed: {done.stdout[-1500:]}")
    return Path(json.loads(done.stdout)["Dir"])


def go_build(source: Path, package: str, binary: Path, log: Path | None, *flags: str) -> Path:
    """``go build`` of ``package`` in ``source`` to ``binary`` (written under another name until done).

    Raises:
        HostError: The build failed.
    """
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(binary.name + ".partial")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    with open(log or os.devnull, "w") as out:
        done = subprocess.run(
            ["go", "build", "-trimpath", *flags, "-o", str(partial), package],
            cwd=source,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise HostError(f"go build of {package} in {source} failed (exit {done.returncode}); see {log}")
    partial.rename(binary)
    return binary


def build_compose(bin_dir: Path, version: str = COMPOSE_VERSION, log: Path | None = None) -> Path:
    """Docker Compose ``version`` built from the Go module proxy, cached as ``bin_dir/docker-compose-VERSION``.

    ``go install`` of the module is refused (its go.mod has replace directives); so the module is
    downloaded into the module cache and ``./cmd`` built inside it.

    Raises:
        HostError: No go, or the download or the build failed.
    """
    binary = bin_dir / f"docker-compose-{version}"
    if binary.exists():
        return binary
    ldflags = f"-w -X {COMPOSE_MODULE}/internal.Version={version}"
    return go_build(go_module_dir(COMPOSE_MODULE, version), "./cmd", binary, log, "-ldflags", ldflags)


def build_ferretdb(bin_dir: Path, work: Path, version: str, log: Path | None = None) -> Path:
    """FerretDB's own ``cmd/ferretdb`` at ``version``, cached as ``bin_dir/ferretdb-VERSION``.

    The module from the proxy lacks ``build/version/version.txt``, which FerretDB's release build
    generates and without which the binary panics at start; it is written into a copy of the module.

    Raises:
        HostError: No go, or the download or the build failed.
    """
    binary = bin_dir / f"ferretdb-{version}"
    if binary.exists():
        return binary
    source = work / f"ferretdb-{version}-src"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(go_module_dir("github.com/FerretDB/FerretDB", version), source)
    for path in [source, *source.rglob("*")]:  # the module cache's copies are read-only
        path.chmod(path.stat().st_mode | 0o200)
    (source / "build" / "version" / "version.txt").write_text(f"{version}\n")
    (source / "build" / "version" / "package.txt").write_text("deploycheck-standin\n")
    try:
        return go_build(source, "./cmd/ferretdb", binary, log)
    finally:
        shutil.rmtree(source, ignore_errors=True)
