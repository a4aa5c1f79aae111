"""Images: the real ones where a registry answers, stand-ins built from Debian packages, PyPI and
Maven Central where none does, and the project's two images built from their unmodified Dockerfiles.

Every stand-in carries the label ``io.btc-pipeline.standin`` (what it is and stands for), so the
check can say of any running container whether it runs a stand-in. What each one is, does and does
not check is written once, in ``tools/deploycheck/standins/README.md``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploycheck.host import HostError, Podman

HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"
SHIMS = HERE / "shims"
LABEL = "io.btc-pipeline.standin"
KEY_LABEL = "io.btc-pipeline.standin.key"
#: The Debian base of every stand-in: minbase plus what several of them need.
BASE_PACKAGES = ("ca-certificates", "python3", "python3-venv", "passwd", "netbase", "tzdata")
DEBIAN_MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: Extra CA certificates of the host (Debian's local CA folder): a build behind an intercepting
#: proxy reaches PyPI and Debian only with them.
LOCAL_CA = Path("/usr/local/share/ca-certificates")


def normalize(image: str) -> str:
    """An image reference as Docker reads it: ``postgres:16.4`` -> ``docker.io/library/postgres:16.4``."""
    first, slash, _ = image.partition("/")
    if not slash:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def repository(image: str) -> str:
    """The normalized reference without its tag or digest."""
    ref = normalize(image).split("@", 1)[0]
    head, colon, tag = ref.rpartition(":")
    return head if colon and "/" not in tag else ref


@dataclass(frozen=True)
class StandIn:
    """A stand-in image: built from ``standins/<name>/Containerfile`` when ``stands_for`` cannot be pulled."""

    name: str
    stands_for: str
    summary: str
    #: Tagged with the real name too: an unmodified Dockerfile's FROM, or compose's image name, must find it.
    real_name: bool
    #: Files copied into the build context besides the stand-in's own directory: target -> source.
    extras: Mapping[str, str] = field(default_factory=dict)


STAND_INS = (
    StandIn(
        "python",
        "docker.io/library/python",
        "Debian bookworm python3 3.11.2 in a venv at /usr/local",
        real_name=True,
    ),
    StandIn(
        "airflow",
        "docker.io/apache/airflow",
        "apache-airflow[postgres] from PyPI in a venv at ~airflow/.local, Debian python3 3.11.2",
        real_name=True,
    ),
    StandIn(
        "postgres",
        "docker.io/library/postgres",
        "Debian bookworm PostgreSQL 15 (compose pins 16.4)",
        real_name=True,
    ),
    StandIn(
        "kafka",
        "docker.redpanda.com/redpandadata/redpanda",
        "Apache Kafka 4.1 KRaft from the project's jars, run from Redpanda's command line; rpk stand-in",
        real_name=False,
        extras={"redpanda.py": "shims/redpanda.py", "rpk.py": "shims/rpk.py"},
    ),
    StandIn(
        "ferretdb",
        "docker.io/library/mongo",
        "FerretDB v1 on SQLite with SCRAM auth; mongo-init/ not run; mongosh stand-in (ping only)",
        real_name=False,
        extras={"mongo.py": "shims/mongo.py", "mongosh.py": "shims/mongosh.py"},
    ),
    StandIn(
        "console",
        "docker.redpanda.com/redpandadata/console",
        "stub: /admin/health checks the brokers in KAFKA_BROKERS answer; no console",
        real_name=False,
        extras={"console.py": "shims/console.py"},
    ),
)


def stand_in_for(image: str) -> StandIn:
    """The stand-in of ``image``.

    Raises:
        HostError: There is none: the image must be pullable.
    """
    repo = repository(image)
    for s in STAND_INS:
        if s.stands_for == repo:
            return s
    raise HostError(f"image {image} cannot be pulled and has no stand-in in tools/deploycheck/images.py")


def standin_tag(s: StandIn, key: str) -> str:
    return f"localhost/standin/{s.name}:{key[:12]}"


def digest(paths: Iterable[Path], *extra: str) -> str:
    """sha256 over the files' relative names and contents, and ``extra`` strings."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra:
        h.update(item.encode() + b"\0")
    return h.hexdigest()


@dataclass
class Resolved:
    """How one image of the compose file or of a Dockerfile's FROM is had."""

    image: str
    pulled: bool
    why_not: str = ""
    standin: StandIn | None = None
    #: What compose must run: the image itself, or the stand-in's own tag (swapped in by the override).
    run_as: str = ""
    built_s: float | None = None


@dataclass
class Builder:
    """Builds the base, the stand-ins and the project images in the check's podman."""

    podman: Podman
    root: Path
    work: Path
    log: Path
    timings: dict[str, float] = field(default_factory=dict)

    def _build(self, tag: str, containerfile: Path, context: Path, *options: str) -> float:
        started = time.monotonic()
        argv = [
            "build",
            "--pull=never",
            "--format",
            "docker",
            "-f",
            str(containerfile),
            "-t",
            tag,
            *options,
            str(context),
        ]
        with self.log.open("a") as out:
            out.write(f"\n$ podman {' '.join(argv)}\n")
            out.flush()
            done = subprocess.run(
                self.podman.argv(*argv), env=self.podman.env, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            tail = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()][-4:]
            raise HostError(
                f"podman build of {tag} ({containerfile}) failed (exit {done.returncode}); the end of {self.log}:\n"
                + "\n".join(f"    {line[:300]}" for line in tail)
            )
        return time.monotonic() - started

    # --- the Debian base -------------------------------------------------------------------------------

    def base(self) -> str:
        """``localhost/standin/bookworm:KEY``: mmdebstrap minbase + BASE_PACKAGES + the host's extra CAs."""
        cas = sorted(LOCAL_CA.glob("*.crt")) if LOCAL_CA.is_dir() else []
        key = digest(cas, *BASE_PACKAGES, *DEBIAN_MIRRORS, "minbase")
        tag = f"localhost/standin/bookworm:{key[:12]}"
        if self.podman.image_exists(tag):
            return tag
        if not shutil.which("mmdebstrap"):
            raise HostError("mmdebstrap not found (Debian: apt-get install mmdebstrap)")
        started = time.monotonic()
        tarball = self.work / "bookworm-minbase.tar"
        argv = [
            "mmdebstrap",
            "--variant=minbase",
            "--include=" + ",".join(BASE_PACKAGES),
            "--aptopt=Acquire::Check-Valid-Until false",
            "--aptopt=APT::Install-Recommends false",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/man/*",
        ]
        if cas:
            argv += [f"--customize-hook=copy-in {' '.join(str(c) for c in cas)} /usr/local/share/ca-certificates/"]
            argv += ['--customize-hook=chroot "$1" update-ca-certificates']
        argv += ["bookworm", str(tarball), *DEBIAN_MIRRORS]
        with self.log.open("a") as out:
            out.write(f"\n$ {' '.join(argv)}\n")
            out.flush()
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise HostError(f"mmdebstrap failed (exit {done.returncode}); see {self.log}")
        self.podman.run(
            "import",
            "--change",
            f"LABEL {LABEL}=Debian bookworm minbase (mmdebstrap) base of the stand-ins",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            str(tarball),
            tag,
        )
        tarball.unlink()
        self.timings["base (mmdebstrap + import)"] = time.monotonic() - started
        return tag

    # --- stand-ins ---------------------------------------------------------------------------------

    def standin(self, s: StandIn, real: str, base: str, extra_files: Mapping[str, Path]) -> tuple[str, float | None]:
        """Build (or find cached) the stand-in ``s`` for the image ``real``; ``(its tag, build seconds)``."""
        context = self.work / "context" / s.name
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(STANDINS / s.name, context)
        files = {**{k: HERE / v for k, v in s.extras.items()}, **extra_files}
        for target, source in files.items():
            if source.is_dir():
                shutil.copytree(source, context / target)
            else:
                shutil.copy2(source, context / target)
        build_args = self.build_args(s, real)
        contents = [p for p in context.rglob("*") if p.is_file() and p.parent.name != "libs"]
        libs = sorted(f"{p.name}:{p.stat().st_size}" for p in context.rglob("libs/*"))
        key = digest(contents, base, *libs, *(f"{k}={v}" for k, v in build_args.items()))
        tag = standin_tag(s, key)
        seconds = None
        if not self.podman.image_exists(tag):
            options = [f"--build-arg=BASE={base}", *(f"--build-arg={k}={v}" for k, v in build_args.items())]
            options += [f"--label={LABEL}={s.summary} (stands for {real})", f"--label={KEY_LABEL}={key}"]
            seconds = self._build(tag, context / "Containerfile", context, *options)
            self.timings[f"stand-in {s.name}"] = seconds
        if s.real_name:
            self.podman.run("tag", tag, normalize(real))
        return tag, seconds

    @staticmethod
    def build_args(s: StandIn, real: str) -> dict[str, str]:
        if s.name == "airflow":
            # apache/airflow:3.3.2-python3.11 -> 3.3.2
            return {"AIRFLOW_VERSION": normalize(real).rsplit(":", 1)[1].split("-", 1)[0]}
        return {}

    # --- the project's images ----------------------------------------------------------------------------

    def project_image(self, tag: str, dockerfile: str, context: str) -> float:
        """Build ``tag`` from the project's Dockerfile, unchanged, with podman's layer cache."""
        seconds = self._build(tag, self.root / context / dockerfile, self.root / context)
        self.timings[f"image {tag}"] = seconds
        return seconds


def dockerfile_bases(dockerfile: Path) -> list[str]:
    """The images a Dockerfile's ``FROM`` lines name (not its own build stages)."""
    stages: set[str] = set()
    bases = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            image = next(w for w in words[1:] if not w.startswith("--"))
            if image not in stages:
                bases.append(image)
            if len(words) >= 4 and words[-2].upper() == "AS":
                stages.add(words[-1])
    return bases


def image_sizes(podman: Podman, names: Iterable[str]) -> dict[str, int]:
    """Bytes of each image (podman's figure, as ``docker images`` shows)."""
    sizes = {}
    for name in names:
        info = podman.json("image", "inspect", name)
        if info:
            sizes[name] = int(info[0].get("Size") or 0)
    return sizes
