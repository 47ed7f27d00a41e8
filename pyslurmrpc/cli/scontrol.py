"""``scontrol checkpoint`` of Slurm 19.05, rebuilt over the client.

Operation names, argument forms, defaults, output texts and exit codes are
those of src/scontrol/scontrol.c and src/scontrol/update_job.c at
slurm-19-05-8-1 (notes in protocol_specs/client_behaviour.md), so scripts
written for scontrol keep working with only the program name changed.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from ..errors import AuthError, CheckpointUnsupported, PyslurmrpcError, slurm_errno_of
from ..slurm_errno import SlurmErrno, text_of
from ..wire.constants import NO_VAL

#: update_job.c CKPT_WAIT: default MaxWait
CKPT_WAIT = 10
ESLURM_DISABLED = int(SlurmErrno.ESLURM_DISABLED)
#: auth_munge.c's error() text when this host's munged cannot mint a credential
LOCAL_MUNGE_FAILURE = "Munge encode failed"

#: (operation, minimum letters) in scontrol's matching order: "re" is requeue, restart needs "res"
OPERATIONS = (("able", 1), ("complete", 2), ("disable", 1), ("enable", 2), ("create", 2),
              ("requeue", 2), ("vacate", 2), ("restart", 2), ("error", 2))
#: which extra arguments each operation parses (others ignore extras)
ARG_PARSERS = {"create": "wait", "requeue": "wait", "vacate": "wait", "restart": "restart"}


def local_munge_hint(exc: PyslurmrpcError) -> str | None:
    """The line libslurm logs (auth_munge.c) when this host's munged could not mint the
    credential: the hint a bare authentication error (SLURM_PROTOCOL_AUTHENTICATION_ERROR's
    text), or a ping's DOWN, lacks (munged not running, a wrong socket).  None for any
    other failure."""
    if isinstance(exc, AuthError) and str(exc).startswith(LOCAL_MUNGE_FAILURE):
        return f"pyslurmrpc: error: {str(exc).split(' [slurm errno', 1)[0]}"
    return None


@dataclass
class Outcome:
    """What the command prints and its exit code."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exit_code: int = 0
    record: dict = field(default_factory=dict)  # for --json


def match_operation(word: str) -> str | None:
    for name, minimum in OPERATIONS:
        n = max(len(word), minimum)
        if word.lower()[:n] == name[:n] and len(word) <= len(name):
            return name
    return None


def parse_id(text: str) -> tuple[int, int] | None:
    """JOBID or JOBID.STEPID as strtol reads them; a bare JOBID means NO_VAL (all steps)."""
    match = re.fullmatch(r"\s*([+-]?\d+)(?:\.([+-]?\d*))?", text)
    if text == "":
        return 0, NO_VAL
    if not match:
        return None
    step = match.group(2)
    return int(match.group(1)) & 0xFFFFFFFF, (int(step) & 0xFFFFFFFF if step else 0) if step is not None else NO_VAL


def _strtol(text: str) -> int:
    match = re.match(r"\s*[+-]?\d+", text)
    return int(match.group()) if match else 0


def parse_extras(kind: str | None, args: list[str]) -> dict | str:
    """MaxWait=/ImageDir= (create, requeue, vacate) or Stick*/ImageDir= (restart); a bad one is returned."""
    opts = {"max_wait": CKPT_WAIT, "image_dir": None, "stick": False}
    if kind is None:
        return opts
    for arg in args:
        low = arg.lower()
        if low.startswith("imagedir="):
            opts["image_dir"] = arg[9:]
        elif kind == "wait" and low.startswith("maxwait="):
            opts["max_wait"] = _strtol(arg[8:]) & 0xFFFF
        elif kind == "restart" and low[:5] == "stick":
            opts["stick"] = True
        else:
            return arg
    return opts


def began_at(when: int) -> str:
    """slurm_make_time_str: local time, %FT%T unless SLURM_TIME_FORMAT says otherwise."""
    fmt = os.environ.get("SLURM_TIME_FORMAT", "")
    if when in (0, 0xFFFFFFFF):
        return "Unknown"
    if "%" in fmt and len(fmt) < 32:
        return time.strftime(fmt, time.localtime(when))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(when))


#: update_job.c "complete" (a testing aid): error_code starts at 1 in each scontrol
#: process, and every pyslurmrpc command is a new process, so it is always the first
COMPLETE_TEST_CODE = 1


def _run_operation(client, op: str, job: int, step: int, opts: dict):
    table = {
        "able": lambda: client.checkpoint_able(job, step),
        "disable": lambda: client.checkpoint_disable(job, step),
        "enable": lambda: client.checkpoint_enable(job, step),
        "create": lambda: client.checkpoint_create(job, step, opts["max_wait"], opts["image_dir"]),
        "vacate": lambda: client.checkpoint_vacate(job, step, opts["max_wait"], opts["image_dir"]),
        "requeue": lambda: client.checkpoint_requeue(job, opts["max_wait"], opts["image_dir"]),
        "restart": lambda: client.checkpoint_restart(job, step, opts["stick"], opts["image_dir"]),
        "error": lambda: client.checkpoint_error(job, step),
        "complete": lambda: client.checkpoint_complete(job, step, 0, COMPLETE_TEST_CODE,
                                                       f"test error message {COMPLETE_TEST_CODE}"),
    }
    return table[op]()


def _print_success(op: str, result, out: Outcome) -> None:
    if op == "able":
        out.stdout.append(f"Began at {began_at(result)}" if result else "Yes")
        out.record["start_time"] = result
    elif op == "error":
        code, msg = result
        out.stdout.append(f"error({code}): {msg}")
        out.record.update(error_code=code, error_msg=msg)


def _failed(out: Outcome, error: str, lines: list[str], exit_code: int) -> Outcome:
    """A failure scontrol words itself: its lines and exit code (0 for a bad op or step name,
    as scontrol), and for --json an error object with errno null, so stdout is never empty."""
    out.stderr += lines
    out.record.update(errno=None, error=error)
    out.exit_code = exit_code
    return out


def checkpoint(client_factory, words: list[str]) -> Outcome:
    """Run ``checkpoint OP ID [ARG] [ARG]`` (``words`` excludes the keyword)."""
    out = Outcome()
    if len(words) < 2 or len(words) > 4:
        text = f"too {'few' if len(words) < 2 else 'many'} arguments for keyword:checkpoint"
        return _failed(out, text, [text], 1)
    op_word, id_word, extras = words[0], words[1], words[2:]
    ids = parse_id(id_word)
    if ids is None:
        return _failed(out, "Invalid job step name", ["Invalid job step name"], 0)
    out.record.update(job_id=ids[0], step_id=ids[1])
    op = match_operation(op_word)
    if op is None:
        text = f"Invalid checkpoint operation: {op_word}"
        return _failed(out, text, [text], 0)
    out.record["operation"] = op
    opts = parse_extras(ARG_PARSERS.get(op), extras)
    if isinstance(opts, str):
        return _failed(out, f"Invalid input: {opts}", [f"pyslurmrpc: error: Invalid input: {opts}",
                                                        "pyslurmrpc: error: Request aborted"], 1)
    job, step = ids
    try:
        client = client_factory()
    except PyslurmrpcError as exc:  # no slurm.conf, a bad --controller...: say that, not an errno text
        return _failed(out, str(exc), [f"pyslurmrpc: {exc}"], 1)
    try:
        result = _run_operation(client, op, job, step, opts)
    except CheckpointUnsupported as exc:   # our own words on stderr; --json has compat's errno too
        out = _failed(out, str(exc), [str(exc)], 1)
        out.record["errno"] = slurm_errno_of(exc)
        return out
    except PyslurmrpcError as exc:
        errno = slurm_errno_of(exc)
        out.record.update(errno=errno, error=text_of(errno))
        if op == "able" and errno == ESLURM_DISABLED:
            out.stdout.append("No")
            out.record["result"] = "No"
            return out
        hint = local_munge_hint(exc)
        if hint:
            out.stderr.append(hint)
        out.stderr.append(f"scontrol_checkpoint error: {text_of(errno)}")
        out.exit_code = 1
        return out
    out.record["errno"] = 0
    _print_success(op, result, out)
    return out
