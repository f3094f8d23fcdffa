"""Hot reload of the mapping folders and the config file: watched, checked, swapped in whole, or refused
and reported while the last good version serves."""

from __future__ import annotations

from engine.reload.reloader import Reloader
from engine.reload.snapshot import MappingSet, load_mapping_set
from engine.reload.status import ReloadStatus
from engine.reload.watch import FileWatch

__all__ = ["FileWatch", "MappingSet", "ReloadStatus", "Reloader", "load_mapping_set"]
