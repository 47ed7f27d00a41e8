"""The Slurm checkpoint client: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio)."""

from .aio import AsyncClient
from .config import SlurmConfig, read_slurm_conf
from .sync import Client

__all__ = ["Client", "AsyncClient", "SlurmConfig", "read_slurm_conf"]
