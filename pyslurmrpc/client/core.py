"""What the blocking and the asyncio client share: settings and pure logic, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..auth import slurm_auth
from ..errors import ConfigError, InvalidArgumentError, ProtocolError, UnexpectedMessageError
from ..wire import (
    MAX_MSG_SIZE, CHECKPOINT_VERSIONS, VERSIONS, Address, Forward, Header, Message, MungeAuthCred,
    encode_message, version_code,
)
from ..wire.repeats import CredentialTemplate, decode_reply_frame
from ..wire.versions import version_text, without_patch_level
from . import validate
from .calls import Call
from .config import SlurmConfig, read_slurm_conf

from ..defaults import MESSAGE_TIMEOUT as DEFAULT_MESSAGE_TIMEOUT, SLURMCTLD_PORT as DEFAULT_SLURMCTLD_PORT
from ..defaults import SLURMD_PORT as DEFAULT_SLURMD_PORT, TCP_TIMEOUT as DEFAULT_CONNECT_TIMEOUT
from ..defaults import TREE_WIDTH as DEFAULT_TREE_WIDTH, SLURMCTLD_TIMEOUT as DEFAULT_SLURMCTLD_TIMEOUT
from ..defaults import CHECKPOINT_VERSION as DEFAULT_CHECKPOINT_VERSION
#: the largest reply a request of this client can get back: an RC (a 4-byte body), a ping's
#: answer, RESPONSE_CHECKPOINT (one error message) - bytes, plus header and credential; a
#: bigger length prefix is refused as it arrives, before anything is buffered for it
REPLY_LIMIT = 1024 * 1024
#: ... plus this much per node a slurmd forwards to (one ret_list entry: name, type, code)
REPLY_LIMIT_PER_FORWARDED_NODE = 4 * 1024
#: libslurm sleeps this long between rounds over the controllers
FAILOVER_PAUSE = 1.0
#: slurm_send_addr_recv_msgs: a refused slurmd connect is tried again up to
#: min(MessageTimeout, this) times (its conn_timeout), ...
SLURMD_CONNECT_RETRIES = 10
#: ... this many seconds apart
SLURMD_RETRY_PAUSE = 1.0
CHECKPOINT_CODES = frozenset(version_code(v) for v in CHECKPOINT_VERSIONS)
#: kinds of request (type, body, version, forwarding) whose frames are kept built; past this
#: many the kept ones are forgotten (a client sends few kinds; a program looping over job ids
#: makes one per job)
MAX_FRAME_TEMPLATES = 256
_TEMPLATES: dict[tuple, CredentialTemplate | None] = {}
#: 20.11+ headers carry a family-tagged orig_addr; clients send family 0 (AF_UNSPEC)
_NO_ADDR_FAMILY = Address(0, None, 0)


@dataclass(frozen=True)
class Endpoint:
    """A daemon to talk to: its name (as slurm.conf says it) and where it listens."""

    name: str
    host: str
    port: int
    index: int = 0  # position among the controllers: 0 is the primary

    def __str__(self) -> str:
        where = validate.address_text(self.host, self.port)
        return f"{self.name} ({where})" if self.name != self.host else where


@dataclass(frozen=True)
class Settings:
    """Everything a client needs, from arguments or slurm.conf."""

    controllers: tuple[Endpoint, ...]
    port_count: int = 1
    nodes: dict = field(default_factory=dict)  # NodeName -> (addr, port | None)
    slurmd_port: int = DEFAULT_SLURMD_PORT
    protocol_version: int = version_code(DEFAULT_CHECKPOINT_VERSION)
    pinned: bool = False         # the caller chose protocol_version: ping tries it first too
    message_timeout: float = DEFAULT_MESSAGE_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    tree_width: int = DEFAULT_TREE_WIDTH
    auth: str = "munge"
    munge_socket: str | None = None
    auth_ttl: int | None = None
    slurmctld_timeout: int = DEFAULT_SLURMCTLD_TIMEOUT   # the ESLURM_IN_STANDBY_MODE retry window
    premint: int = 0             # MUNGE credentials minted ahead per payload (auth/premint.py)

    def controller_order(self, use_backup: bool, spread: int = 0) -> list[Endpoint]:
        """Primary first; after a backup answered, backups first (libslurm's sticky use_backup).

        With a SlurmctldPort range, the port is the first plus ``spread`` modulo the count
        (libslurm's spread is the time plus its pid; the flow asks the runner for the time).
        """
        if self.port_count > 1:
            port = self.controllers[0].port + spread % self.port_count
            order = [Endpoint(c.name, c.host, port, i) for i, c in enumerate(self.controllers)]
        else:   # every call asks: the controllers as they are (__post_init__ numbered them)
            order = list(self.controllers)
        return order[1:] + order[:1] if use_backup and len(order) > 1 else order

    def __post_init__(self):
        if any(c.index != i for i, c in enumerate(self.controllers)):    # each its place in the order
            object.__setattr__(self, "controllers", tuple(
                Endpoint(c.name, c.host, c.port, i) for i, c in enumerate(self.controllers)))

    def node(self, name: str) -> Endpoint:
        """slurm_conf_get_addr: NodeAddr and Port from slurm.conf, else the name and SlurmdPort."""
        addr, port = self.nodes.get(name, (name, None))
        return Endpoint(name, addr, port or self.slurmd_port)


def settings_from_args(host, port=DEFAULT_SLURMCTLD_PORT, *, backups=(), auth="munge", munge_socket=None,
                       protocol_version=None, timeout=None, nodes=None,
                       slurmd_port=DEFAULT_SLURMD_PORT, tree_width=DEFAULT_TREE_WIDTH,
                       connect_timeout=DEFAULT_CONNECT_TIMEOUT, auth_ttl=None,
                       slurmctld_timeout=DEFAULT_SLURMCTLD_TIMEOUT, premint=0) -> Settings:
    """Settings for ``Client(host, port, ...)``; backups are host or (host, port) items."""
    host, port = validate.host(host), validate.port(port)
    timeout = None if timeout is None else validate.timeout(timeout)
    connect_timeout = validate.timeout(connect_timeout, "connect_timeout")
    slurmd_port = validate.port(slurmd_port, "slurmd_port")
    munge_socket = validate.socket_path(munge_socket)
    controllers = (Endpoint(host, host, port),) + tuple(
        Endpoint(b_host, b_host, b_port, i) for i, (b_host, b_port) in enumerate(validate.backups(backups, port), 1))
    return Settings(
        controllers=controllers, nodes=validate.nodes(nodes), slurmd_port=slurmd_port,
        protocol_version=pinned_version(protocol_version or DEFAULT_CHECKPOINT_VERSION),
        pinned=protocol_version is not None,
        message_timeout=DEFAULT_MESSAGE_TIMEOUT if timeout is None else float(timeout),
        connect_timeout=min(connect_timeout, DEFAULT_MESSAGE_TIMEOUT if timeout is None else float(timeout)),
        tree_width=validate.tree_width(tree_width), auth=validate.auth(auth), munge_socket=munge_socket,
        auth_ttl=validate.auth_ttl(auth_ttl),
        slurmctld_timeout=_seconds("slurmctld_timeout", slurmctld_timeout), premint=validate.premint(premint))


def settings_from_conf(path=None, **overrides) -> Settings:
    """Settings from slurm.conf ($SLURM_CONF, then /etc/slurm/slurm.conf) plus keyword overrides
    (an override of None keeps what the file says)."""
    checked = _conf_overrides(overrides)
    conf: SlurmConfig = read_slurm_conf(validate.conf_path(path))
    if not conf.controllers:
        raise ConfigError("no SlurmctldHost (or ControlMachine) defined", path=conf.path)
    auth = {"auth/munge": "munge", "auth/none": "none"}.get(conf.auth_type)
    if auth is None and "auth" not in checked:
        path, line = conf.auth_type_at or (conf.path, None)
        raise ConfigError(f"AuthType {conf.auth_type} is not supported (auth/munge, auth/none)", path=path, line=line)
    base = dict(
        controllers=tuple(Endpoint(c.name, c.addr, conf.slurmctld_port, i) for i, c in enumerate(conf.controllers)),
        port_count=conf.slurmctld_port_count,
        nodes={n: (a.addr, a.port) for n, a in conf.nodes.items()}, slurmd_port=conf.slurmd_port,
        message_timeout=float(conf.message_timeout), connect_timeout=float(conf.tcp_timeout),
        tree_width=conf.tree_width, auth=auth, munge_socket=conf.munge_socket, auth_ttl=conf.auth_ttl,
        slurmctld_timeout=conf.slurmctld_timeout)
    return Settings(**{**base, **checked})


def _conf_overrides(overrides: dict) -> dict:
    """from_slurm_conf's keyword overrides, checked, as Settings fields."""
    if overrides.get("timeout") is not None and overrides.get("message_timeout") is not None:
        raise InvalidArgumentError("timeout and message_timeout are the same setting: give one")
    unknown = sorted(set(overrides) - set(_CONF_OVERRIDES))
    if unknown:
        raise InvalidArgumentError(f"unknown setting(s) for from_slurm_conf: {', '.join(unknown)} "
                                   f"(it takes {', '.join(_CONF_OVERRIDES)}; the controllers come from the file"
                                   f"{validate.did_you_mean(unknown, _CONF_OVERRIDES)})")
    checked = {}
    for key, value in overrides.items():
        field_name, check = _CONF_OVERRIDES[key]
        if value is not None:
            checked[field_name] = check(value, key)
    if "protocol_version" in checked:
        checked["pinned"] = True
    return checked


#: the keyword overrides of from_slurm_conf: the Settings field each sets and its check
#: (called with the value and the keyword's own name, which an error names)
_CONF_OVERRIDES = {
    "timeout": ("message_timeout", validate.timeout),
    "message_timeout": ("message_timeout", validate.timeout),
    "connect_timeout": ("connect_timeout", validate.timeout),
    "tree_width": ("tree_width", validate.tree_width),
    "slurmd_port": ("slurmd_port", validate.port),
    "premint": ("premint", validate.premint),
    "munge_socket": ("munge_socket", validate.socket_path),
    "protocol_version": ("protocol_version", lambda value, _name: pinned_version(value)),
    "auth": ("auth", lambda value, _name: validate.auth(value)),
    "auth_ttl": ("auth_ttl", validate.auth_ttl),
    "slurmctld_timeout": ("slurmctld_timeout", lambda value, name: _seconds(name, value)),
    "nodes": ("nodes", lambda value, _name: validate.nodes(value)),
}


def reply_limit(forwarded: int = 0) -> int:
    """The length prefix a reply may have when the request forwards to ``forwarded`` nodes."""
    return min(MAX_MSG_SIZE, REPLY_LIMIT + forwarded * REPLY_LIMIT_PER_FORWARDED_NODE)


def _seconds(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be a whole number of seconds >= 0, not {value!r}")
    return value


def pinned_version(version) -> int:
    """The protocol version of a release the caller names (17.11 - 26.05): the checkpoint
    calls speak it (a release without them is refused by those calls, nothing sent), and
    ping and controller_version try it first, so a controller of that release is pinged
    with no refused request in its log."""
    if isinstance(version, str):
        version = without_patch_level(version)      # "22.05.8", as slurmctld -V and scontrol version print it
    try:
        return version_code(version)
    except ValueError as exc:
        raise InvalidArgumentError(f"protocol_version: {exc}") from None


def make_auth(settings: Settings):
    """The authenticator for the settings (an authenticator object passes through).

    One object serves both clients: its flows run on whichever runner the client has.
    """
    if not isinstance(settings.auth, str):
        return settings.auth
    if settings.auth == "none":
        return slurm_auth.NoneAuth()
    # a munged that stalls, refuses or is missing must not hold a call longer than MessageTimeout
    # (libslurm's defaults would hold it ~214 s): each libmunge wait is shrunk so its tries fit,
    # and every retry and pause of libmunge and auth_munge ends by the budget's deadline (F7a).
    return slurm_auth.MungeAuth(settings.munge_socket, settings.auth_ttl,
                                retry=slurm_auth.bounded_retry(settings.message_timeout),
                                budget=settings.message_timeout, premint=settings.premint)


def request_frame(call: Call, auth, version: int, forward: Forward = Forward(),
                  body: bytes | None = None) -> bytes:
    """The whole frame for ``call`` in header version ``version`` (``body``: already encoded).

    An auth/munge request is packed into the frame built for its kind before (the credential
    is all that differs); anything a template cannot take is encoded whole, which names
    what is wrong with it.
    """
    if type(auth) is MungeAuthCred:
        template = _template(call, auth.plugin_version, version, forward, body)
        frame = template.fill(auth.credential) if template is not None else None
        if frame is not None:
            return frame
    return encode_message(_request(call, auth, version, forward), body_bytes=body)


def _request(call: Call, auth, version: int, forward: Forward) -> Message:
    addr = _NO_ADDR_FAMILY if VERSIONS[version].family_addr else Address()
    return Message(Header(version=version, msg_type=call.msg_type, forward=forward, orig_addr=addr), auth, call.body)


def _template(call: Call, plugin_version: int, version: int, forward: Forward, body: bytes | None):
    """The CredentialTemplate of this kind of request (None: it gets none, it is encoded whole)."""
    key = (call.msg_type, call.body, version, forward, body, plugin_version)
    try:
        return _TEMPLATES[key]
    except KeyError:
        pass
    except TypeError:      # a body that cannot be a key
        return None
    try:
        template = CredentialTemplate(_request(call, MungeAuthCred(credential=None, plugin_version=plugin_version),
                                               version, forward), body_bytes=body)
    except (ProtocolError, ValueError):    # encode_message says what is wrong when it is encoded whole
        template = None
    if len(_TEMPLATES) >= MAX_FRAME_TEMPLATES:
        _TEMPLATES.clear()
    _TEMPLATES[key] = template
    return template


def decode_reply(call: Call, frame: bytes, version: int) -> Message:
    """Decode a reply and check it is in a version the request can be answered in."""
    reply = decode_reply_frame(frame)
    allowed = CHECKPOINT_CODES if version in CHECKPOINT_CODES else {version}
    if reply.version not in allowed:
        raise UnexpectedMessageError(
            f"{call.name}: reply in protocol version {version_text(reply.version)}, request was "
            f"{version_text(version)}",
            field="header.version", offset=4)
    return reply

