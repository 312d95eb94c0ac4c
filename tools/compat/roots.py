"""Debian roots with one QGIS each, made with debootstrap and cached under build/compat/.

Each target is a Debian release and the suite its QGIS comes from. A root is built once
(debootstrap, then the project's own tools/system_packages.sh inside it, so the compat run
also checks that script) and reused until it is deleted. Commands run in it with chroot,
with /proc, /sys and /dev bound from this machine and this machine's pip configuration
and CA files copied in at the same paths, since pip reaches the registry only with them.
"""

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ROOTS = REPO_ROOT / "build" / "compat"
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
# What a minimal root needs before the project's own set-up can run.
BASE_PACKAGES = "ca-certificates,make,git,python3,python3-venv,procps,xauth"
# Environment passed into the root: pip reaches the registry only with these.
PASSED_ENV = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
              "PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_TRUSTED_HOST")


@dataclass(frozen=True)
class Target:
    name: str  # folder under build/compat/
    release: str  # Debian codename
    qgis_suite: str  # suite QGIS is installed from

    @property
    def root(self):
        return ROOTS / self.name


TARGETS = (
    Target("bookworm-qgis3.22", "bookworm", "bookworm"),
    Target("bookworm-qgis3.40", "bookworm", "bookworm-backports"),
    Target("trixie-qgis3.44", "trixie", "trixie-backports"),
)


def _files_to_copy():
    """This machine's pip configuration and CA files, copied into a root at the same paths."""
    paths = {Path("/etc/pip.conf"), Path("/etc/resolv.conf"), *Path("/etc/xdg/pip").glob("*")}
    for variable in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CONFIG_FILE"):
        if os.environ.get(variable):
            paths.add(Path(os.environ[variable]))
    return sorted(p for p in paths if p.is_file())


@contextlib.contextmanager
def mounted(root):
    """/proc, /sys and /dev (with /dev/shm and /dev/pts) bound into ``root`` for the duration; always unmounted."""
    done = []
    try:
        for target, options in (("proc", ["-t", "proc", "proc"]), ("sys", ["-t", "sysfs", "sysfs"]),
                                ("dev", ["--rbind", "/dev"])):
            where = root / target
            where.mkdir(parents=True, exist_ok=True)
            subprocess.run(["mount", *options, str(where)], check=True)
            done.append(where)
        yield
    finally:
        for where in reversed(done):
            subprocess.run(["umount", "-l", str(where)], check=False)


def refresh_host_files(root):
    for path in _files_to_copy():
        inside = root / path.relative_to("/")
        inside.parent.mkdir(parents=True, exist_ok=True)
        if inside.is_symlink() or inside.exists():
            inside.unlink()
        shutil.copy2(path.resolve(), inside)


def chroot(target, command, env=None, log=None, timeout=None):
    """Run ``command`` (a shell string) as root inside ``target``'s root; returns CompletedProcess."""
    environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                   "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    environment.update({k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)})
    environment.update(env or {})
    refresh_host_files(target.root)
    with mounted(target.root):
        return subprocess.run(["chroot", str(target.root), "/bin/sh", "-c", command], env=environment,
                              stdout=log, stderr=subprocess.STDOUT if log else None, timeout=timeout)


def qgis_version(target):
    done = subprocess.run(["chroot", str(target.root), "dpkg-query", "-W", "-f", "${Version}", "qgis"],
                          capture_output=True, text=True)
    return done.stdout.strip()


def ensure_root(target, log):
    """Build ``target``'s root unless a finished one is cached; returns its QGIS version."""
    ready = target.root / ".overlap-relevance-ready"
    if ready.exists():
        return ready.read_text().strip()
    if target.root.exists():
        # A mount left by a killed run would make rmtree delete this machine's /dev through it.
        inside = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(target.root) + "/")]
        if inside:
            raise RuntimeError(f"{target.root} still has mounts ({', '.join(inside)}); umount them first")
        shutil.rmtree(target.root)
    target.root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", target.release,
                    str(target.root), MIRROR], check=True, stdout=log, stderr=subprocess.STDOUT)
    (target.root / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {target.release} main\n"
        f"deb {MIRROR} {target.release}-updates main\n"
        f"deb {SECURITY} {target.release}-security main\n")
    script = target.root / "tmp" / "system_packages.sh"
    shutil.copy2(REPO_ROOT / "tools" / "system_packages.sh", script)
    done = chroot(target, "apt-get update -q && sh /tmp/system_packages.sh",
                  env={"QGIS_SUITE": target.qgis_suite}, log=log)
    if done.returncode != 0:
        raise RuntimeError(f"{target.name}: system packages failed (exit {done.returncode}); see the log")
    subprocess.run(["chroot", str(target.root), "apt-get", "clean"], check=False)
    version = qgis_version(target)
    ready.write_text(version + "\n")
    return version


if __name__ == "__main__":  # build the roots only: python3 tools/compat/roots.py [NAME ...]
    import sys

    wanted = sys.argv[1:] or [t.name for t in TARGETS]
    for t in TARGETS:
        if t.name in wanted:
            with open(ROOTS.parent / f"compat-{t.name}-root.log", "ab") as handle:
                ROOTS.mkdir(parents=True, exist_ok=True)
                print(t.name, ensure_root(t, handle), flush=True)
