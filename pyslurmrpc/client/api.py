"""The public methods, written once for both clients.

Each method builds a flow (flows.py) and hands it to ``self._run``: the
blocking client runs it on the blocking runner and returns the result, the
asyncio client returns a coroutine of the asyncio runner, so
``await client.checkpoint_able(...)`` works with the same code.
"""

from __future__ import annotations

import inspect
import os

from . import calls, flows, validate
from .core import Settings, settings_from_args, settings_from_conf
from .detect import release_name


class ClientApi:
    """Methods shared by :class:`~pyslurmrpc.Client` and :class:`~pyslurmrpc.AsyncClient`."""

    def __init__(self, host: str, port: int = 6817, *, backups=(), auth="munge", munge_socket=None,
                 protocol_version=None, timeout=None, **more):
        """Talk to slurmctld at ``host:port`` (no slurm.conf needed).

        ``backups``: backup controllers, a list of "HOST", "HOST:PORT" or (host, port)
        (a port not given is ``port``), tried in order when the primary is unreachable.  ``auth``: "munge", "none" or an
        authenticator object.  ``protocol_version``: the controller's release, "17.11" to
        "26.05" (default 19.05): the checkpoint calls speak it (a release without them,
        20.02 on, makes them raise CheckpointUnsupported, nothing sent), and when named,
        ping and controller_version try it first, so a ping of a controller of that release
        makes no refused request (each one is a few error lines in its log); controller_version
        still asks the newer releases that take that version too.
        ``timeout``: seconds, replaces MessageTimeout (default 10).  More keywords:
        ``nodes`` ({name: "ADDR", "ADDR:PORT" or (addr, port)}; no port: ``slurmd_port``), ``slurmd_port``, ``tree_width``,
        ``connect_timeout``, ``auth_ttl``, ``slurmctld_timeout`` (SlurmctldTimeout, default 120 s: a
        checkpoint call answered ESLURM_IN_STANDBY_MODE is asked again every half of it,
        for up to 1.5 times it, when there are backups), ``premint`` (MUNGE credentials
        minted ahead per message, default 0: see pyslurmrpc.auth.premint).
        """
        _known_keywords(type(self).__name__, more)
        self._setup(settings_from_args(host, port, backups=backups, auth=auth, munge_socket=munge_socket,
                                       protocol_version=protocol_version, timeout=timeout, **more))

    @classmethod
    def from_slurm_conf(cls, path=None, **overrides):
        """A client configured from slurm.conf: ``path``, else $SLURM_CONF, else /etc/slurm/slurm.conf.

        Keyword overrides replace what the file says (``timeout``, ``auth``,
        ``munge_socket``, ``protocol_version``, ``tree_width``, ...).
        """
        client = cls.__new__(cls)
        client._setup(settings_from_conf(path, **overrides))
        return client

    def _setup(self, settings: Settings) -> None:
        from .core import make_auth

        self.settings = settings
        self._auth = make_auth(settings)
        self._state = flows.State(settings, self._auth, seed=os.getpid())

    def _drop_minted(self) -> None:
        """A call failed: credentials minted ahead are never used after it (auth/premint.py)."""
        drop = getattr(self._auth, "drop_minted", None)
        if drop is not None:
            drop()

    @property
    def premint_counts(self):
        """:class:`~pyslurmrpc.auth.PremintCounts` of the credentials this client minted ahead
        (``premint=N``): how many calls took one, how many were minted, how many were thrown
        away unused.  None without premint."""
        stock = getattr(self._auth, "stock", None)
        return None if stock is None else stock.counts()

    def __reduce__(self):
        """A client pickles as its settings only (a ProcessPoolExecutor sends ``client.ping``
        so): the copy mints its own credentials and learns each controller's release anew,
        as credentials are never shared across processes."""
        return _rebuilt, (type(self), self.settings)

    def __repr__(self) -> str:
        hosts = ", ".join(str(c) for c in self.settings.controllers)
        # unpinned, protocol_version is only the checkpoint calls' 19.05: each controller's is found
        speaks = (f"release {release_name(self.settings.protocol_version)} pinned" if self.settings.pinned
                  else "release found per controller")
        return f"{type(self).__name__}({hosts}, {speaks})"

    # -- checkpoint API (src/api/checkpoint.c) ---------------------------------
    def checkpoint_able(self, job_id: int, step_id: int) -> int:
        """Start time of a checkpoint in progress, else 0 (slurm_checkpoint_able)."""
        return self._run(flows.checkpoint(self._state, calls.able(job_id, step_id)))

    def checkpoint_disable(self, job_id: int, step_id: int) -> None:
        """Disable checkpoints of the step (slurm_checkpoint_disable)."""
        return self._run(flows.checkpoint(self._state, calls.disable(job_id, step_id)))

    def checkpoint_enable(self, job_id: int, step_id: int) -> None:
        """Enable checkpoints of the step again (slurm_checkpoint_enable)."""
        return self._run(flows.checkpoint(self._state, calls.enable(job_id, step_id)))

    def checkpoint_create(self, job_id: int, step_id: int, max_wait: int, image_dir: str | None = None) -> None:
        """Checkpoint the step; it keeps running (slurm_checkpoint_create)."""
        return self._run(flows.checkpoint(self._state, calls.create(job_id, step_id, max_wait, image_dir)))

    def checkpoint_vacate(self, job_id: int, step_id: int, max_wait: int, image_dir: str | None = None) -> None:
        """Checkpoint the step, then end it (slurm_checkpoint_vacate)."""
        return self._run(flows.checkpoint(self._state, calls.vacate(job_id, step_id, max_wait, image_dir)))

    def checkpoint_requeue(self, job_id: int, max_wait: int, image_dir: str | None = None) -> None:
        """Checkpoint the batch job and requeue it (slurm_checkpoint_requeue)."""
        return self._run(flows.checkpoint(self._state, calls.requeue(job_id, max_wait, image_dir)))

    def checkpoint_restart(self, job_id: int, step_id: int, stick: bool = False, image_dir: str | None = None) -> None:
        """Restart from a checkpoint, on the same nodes if ``stick`` (slurm_checkpoint_restart)."""
        return self._run(flows.checkpoint(self._state, calls.restart(job_id, step_id, stick, image_dir)))

    def checkpoint_complete(self, job_id: int, step_id: int, begin_time: int, error_code: int,
                            error_msg: str | None = None) -> None:
        """Report that a checkpoint finished (slurm_checkpoint_complete)."""
        return self._run(flows.checkpoint(
            self._state, calls.complete(job_id, step_id, begin_time, error_code, error_msg)))

    def checkpoint_task_complete(self, job_id: int, step_id: int, task_id: int, begin_time: int,
                                 error_code: int, error_msg: str | None = None) -> None:
        """Report that one task's checkpoint finished (slurm_checkpoint_task_complete)."""
        return self._run(flows.checkpoint(
            self._state, calls.task_complete(job_id, step_id, task_id, begin_time, error_code, error_msg)))

    def checkpoint_error(self, job_id: int, step_id: int) -> tuple[int, str | None]:
        """(error_code, error_msg) of the step's last checkpoint (slurm_checkpoint_error)."""
        return self._run(flows.checkpoint(self._state, calls.error(job_id, step_id)))

    def checkpoint_tasks(self, job_id: int, step_id: int, begin_time: int, image_dir: str | None,
                         max_wait: int, nodelist: str) -> dict[str, int]:
        """Ask every slurmd in ``nodelist`` to checkpoint its tasks (slurm_checkpoint_tasks).

        Returns {node: 0} when all succeed; raises SlurmError with the highest
        per-node code, ``.details`` holding every node's code.  The step id is
        0..65535, as libslurm's uint16_t argument (widened to 32 bits on the wire).
        CheckpointUnsupported, nothing sent, when the release pinned or a controller's
        release found by an earlier call is one whose slurmds cannot checkpoint (21.08 on).
        """
        return self._run(flows.tasks(self._state, job_id, step_id, begin_time, image_dir, max_wait, nodelist))

    # -- controller ------------------------------------------------------------
    def ping(self, controller: int | None = None) -> bool:
        """True when the controller answers REQUEST_PING; any release 17.11-26.05 (and newer).

        It never returns False: as every call, it raises instead - a TransportError when no
        controller can be reached or none answers in time, a SlurmError when one answers
        with an error code.

        The first ping to a controller finds the protocol version it speaks (one more
        round of pings side by side if it refuses the first); later ones use it.

        ``controller``: index into the controllers (0 primary) to ping that one
        only, without failover, as ``scontrol ping`` does.
        """
        return self._run(flows.ping(self._state, self._controller(controller)))

    def controller_version(self, controller: int | None = None) -> str:
        """The Slurm release the controller speaks ("19.05", "26.05", ..., or "newer than 26.05,
        protocol 0x2e00"), from its answers to authenticated pings.  Asked afresh on every
        call (a controller upgraded in place still takes the requests of the release it was
        cached as); what it finds is cached for the other calls until one of them fails."""
        return self._run(flows.controller_version(self._state, self._controller(controller)), release_name)

    def _controller(self, index: int | None):
        """The endpoint of controller ``index`` (None: whichever answers, with failover)."""
        if index is None:
            return None
        controllers = self.settings.controllers
        return controllers[validate.controller_index(index, len(controllers))]


def _rebuilt(cls, settings: Settings) -> ClientApi:
    """A fresh ``cls`` client with ``settings``, as unpickled."""
    client = cls.__new__(cls)
    client._setup(settings)
    return client


#: the keywords Client(...) takes, in settings_from_args' order (read once: a client is made often)
_KEYWORDS = tuple(name for name, p in inspect.signature(settings_from_args).parameters.items()
                  if p.kind is inspect.Parameter.KEYWORD_ONLY)


def _known_keywords(cls_name: str, given: dict) -> None:
    """A TypeError naming the client and what it takes: a mistyped keyword was reported
    as an argument of the internal settings_from_args."""
    for name in given:
        if name not in _KEYWORDS:
            raise TypeError(f"{cls_name}() got an unexpected keyword argument {name!r} "
                            f"(it takes {', '.join(_KEYWORDS)}{validate.did_you_mean([name], _KEYWORDS)})")
