"""``pyslurmrpc demo``: every checkpoint operation, through the real client over TCP, against
an embedded fake controller (and two fake slurmds) with a checkpoint that really works.

MUNGE is used when a munged answers on its default socket (or ``--munge-socket``),
auth/none otherwise, so the demo runs with nothing installed beyond the package.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

from .. import SLURM_BATCH_SCRIPT, Client, PyslurmrpcError, SlurmError
from ..auth.munge import MungeClient
from ..auth.slurm_auth import AsyncMungeAuth, NoneAuth
from ..fake import Cluster, FakeSlurmctld, FakeSlurmd

JOB, PENDING_JOB, NODES = 42, 43, ("n1", "n2")
#: the whole first paragraph of the module docstring (its first line alone stops mid-sentence)
DESCRIPTION = " ".join(__doc__.split("\n\n")[0].replace("``", "").split())


def _munge_works(socket_path) -> bool:
    try:
        MungeClient(socket_path).encode()
        return True
    except PyslurmrpcError:
        return False


def _cluster(uid: int, image_root: str) -> Cluster:
    cluster = Cluster(slurm_user=uid, job_checkpoint_dir=image_root, tree_width=1)
    cluster.add_job(JOB, uid, "running", batch=True, steps=[0], nodes=NODES)
    cluster.add_job(PENDING_JOB, uid, "pending", batch=True)
    return cluster


class _StartTime(int):
    """checkpoint_able's answer, printed with what it means (0: able, no checkpoint begun)."""

    def __repr__(self) -> str:
        if not self:
            return "0 (able; no checkpoint begun)"
        began = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self))
        return f"{int(self)} (able; a checkpoint began {began})"


def _steps(client: Client, images: str, begin: int):
    """(label, call) for every operation, in an order that tells a story."""
    c, step = client, 0

    def able(job: int, step_id: int):
        return lambda: _StartTime(c.checkpoint_able(job, step_id))

    return [
        ("ping()", c.ping),
        ("controller_version()", c.controller_version),
        (f"checkpoint_able({JOB}, 0)", able(JOB, step)),
        (f"checkpoint_disable({JOB}, 0)", lambda: c.checkpoint_disable(JOB, step)),
        (f"checkpoint_able({JOB}, 0)", able(JOB, step)),
        (f"checkpoint_create({JOB}, 0, 10, images)", lambda: c.checkpoint_create(JOB, step, 10, images)),
        (f"checkpoint_enable({JOB}, 0)", lambda: c.checkpoint_enable(JOB, step)),
        (f"checkpoint_create({JOB}, 0, 10, images)", lambda: c.checkpoint_create(JOB, step, 10, images)),
        (f"checkpoint_able({JOB}, 0)", able(JOB, step)),
        (f"checkpoint_tasks({JOB}, 0, begin, images, 10, 'n[1-2]')",
         lambda: c.checkpoint_tasks(JOB, step, begin, images, 10, "n[1-2]")),
        (f"checkpoint_task_complete({JOB}, 0, 1, begin, 0)",
         lambda: c.checkpoint_task_complete(JOB, step, 1, begin, 0)),
        (f"checkpoint_complete({JOB}, 0, begin, 5, 'disk quota exceeded')",
         lambda: c.checkpoint_complete(JOB, step, begin, 5, "disk quota exceeded")),
        (f"checkpoint_error({JOB}, 0)", lambda: c.checkpoint_error(JOB, step)),
        (f"checkpoint_requeue({JOB}, 10, images)", lambda: c.checkpoint_requeue(JOB, 10, images)),
        (f"checkpoint_vacate({JOB}, SLURM_BATCH_SCRIPT, 10, images)",
         lambda: c.checkpoint_vacate(JOB, SLURM_BATCH_SCRIPT, 10, images)),
        (f"checkpoint_able({JOB}, 0)", able(JOB, step)),
        (f"checkpoint_restart({JOB}, SLURM_BATCH_SCRIPT, stick=True, images)",
         lambda: c.checkpoint_restart(JOB, SLURM_BATCH_SCRIPT, True, images)),
        (f"checkpoint_able({JOB}, SLURM_BATCH_SCRIPT)", able(JOB, SLURM_BATCH_SCRIPT)),
        (f"checkpoint_able({PENDING_JOB}, 0)", able(PENDING_JOB, 0)),
        ("checkpoint_able(999999, 0)", able(999999, 0)),
    ]


def _show(label: str, call) -> tuple[str, bool]:
    try:
        return f"{label:<58} -> {call()!r}", True
    except SlurmError as exc:
        return f"{label:<58} -> SlurmError {exc.errno} {exc.name}: {exc}", True
    except PyslurmrpcError as exc:
        return f"{label:<58} -> {type(exc).__name__}: {exc}", False


@contextlib.contextmanager
def _image_root(image_dir):
    """Where the checkpoint images go: ``image_dir`` (kept; new or empty) or a temporary directory."""
    if image_dir is None:
        with tempfile.TemporaryDirectory(prefix="pyslurmrpc-demo-") as root:
            yield root
        return
    try:
        os.makedirs(image_dir, exist_ok=True)
        full = os.listdir(image_dir)
    except OSError as err:        # makedirs says "File exists" for a file in the way
        reason = "not a directory" if isinstance(err, FileExistsError) else (err.strerror or str(err))
        raise _DemoUsage(f"cannot use --image-dir {image_dir!r}: {reason}") from None
    if full:      # the demo's records must not overwrite anything
        raise _DemoUsage(f"--image-dir {image_dir!r} is not empty; give a new or empty directory")
    yield os.path.abspath(image_dir)


class _DemoUsage(Exception):
    """A --image-dir the demo cannot use."""


def run(munge_socket=None, out=print, image_dir=None) -> int:
    """Run every operation and print each line with ``out``; 0 when every call got Slurm's answer.

    ``image_dir``: keep the checkpoint image records there (a new or empty directory);
    by default they go to a temporary directory removed at the end.
    """
    uid = os.getuid()
    use_munge = _munge_works(munge_socket)
    daemon_auth = (lambda: AsyncMungeAuth(munge_socket)) if use_munge else (lambda: NoneAuth(uid=uid, gid=0))
    with _image_root(image_dir) as root:
        cluster = _cluster(uid, root)
        images = os.path.join(root, "images")
        slurmds = [FakeSlurmd(cluster, node, plugin="simulated", auth=daemon_auth()) for node in NODES]
        ctld = FakeSlurmctld(cluster, plugin="simulated", auth=daemon_auth())
        with ctld, slurmds[0], slurmds[1]:
            nodes = {n: cluster.node_addrs[n] for n in NODES}
            client = Client(ctld.host, ctld.port, auth="munge" if use_munge else "none",
                            munge_socket=munge_socket, nodes=nodes, tree_width=1)
            out(f"fake slurmctld 19.05 on {ctld.host}:{ctld.port}, slurmds {', '.join(f'{n} on {h}:{p}' for n, (h, p) in nodes.items())}")
            out(f"auth: {'auth/munge (munged)' if use_munge else 'auth/none (no munged answered)'}; "
                f"checkpoint plugin: simulated; job {JOB} running on n[1-2], job {PENDING_JOB} pending")
            ok = True
            for label, call in _steps(client, images, int(time.time())):
                line, good = _show(label, call)
                out(line)
                ok &= good
            written = sorted(os.path.relpath(os.path.join(d, f), root)
                             for d, _, files in os.walk(root) for f in files)
            where = (f"under {root}" if image_dir is not None
                     else "in a temporary directory, removed now; --image-dir DIR keeps them")
            out(f"image records written ({where}): {', '.join(written) or 'none'}")
    return 0 if ok else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pyslurmrpc demo", description=DESCRIPTION)
    p.add_argument("--munge-socket", metavar="PATH",
                   help="munged socket (default: libmunge's, /run/munge/munge.socket.2); auth/none when "
                        "no munged answers there")
    p.add_argument("--image-dir", metavar="DIR",
                   help="keep the checkpoint image records in DIR (created if missing; must be empty); "
                        "default: a temporary directory, removed when the demo ends")
    opts = p.parse_args(argv)
    try:
        return run(opts.munge_socket, image_dir=opts.image_dir)
    except _DemoUsage as err:
        p.exit(2, f"{p.prog}: error: {err}\n")
