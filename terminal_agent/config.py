"""The terminal's configuration: one small JSON file written at setup.

    {
      "api_base": "https://points.example.jp",
      "terminal_id": "T-0001",
      "key_path": "terminal.pem",
      "device": "usb",
      "mode": "store",
      "queue_path": "queue.sqlite",
      "timeout_s": 3.0,
      "retries": 2
    }

Relative paths are relative to the config file's folder, so a terminal's folder (key,
config, queue) can be moved or copied as a whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

MODES = ("store", "charger", "event")


class ConfigError(ValueError):
    """The config file is missing, not JSON, or holds a value the agent cannot use."""


@dataclass(frozen=True)
class AgentConfig:
    api_base: str  # scheme, host and port of the API, e.g. http://127.0.0.1:8000
    terminal_id: str  # the signature's keyid, as the operator registered it
    key_path: Path  # this terminal's Ed25519 private key (PEM, mode 0600)
    device: str  # 'usb' (or 'usb:054c:06c3', 'tty:…') or 'udp:127.0.0.1:PORT' for the emulator
    mode: str  # 'store' | 'charger' | 'event', as registered: it decides the menu
    queue_path: Path  # SQLite file of records waiting for the network
    timeout_s: float = 3.0  # per HTTP attempt
    retries: int = 2  # further attempts after a timeout or a connection error

    def __post_init__(self) -> None:
        # Coerce here so a config built in code behaves like one loaded from JSON.
        object.__setattr__(self, "key_path", Path(self.key_path))
        object.__setattr__(self, "queue_path", Path(self.queue_path))
        if not self.api_base.startswith(("http://", "https://")):
            raise ConfigError(f"api_base must start with http:// or https://, got {self.api_base!r}")
        if not self.terminal_id:
            raise ConfigError("terminal_id is empty")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.device:
            raise ConfigError("device is empty (use 'usb' for a reader on USB)")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 10:
            raise ConfigError(f"retries must be an integer from 0 to 10, got {self.retries!r}")

    @classmethod
    def load(cls, path: Path | str) -> AgentConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"the config file {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"the config file {path} must hold a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown settings in {path}: {', '.join(unknown)}")
        folder = path.resolve().parent
        for name in ("key_path", "queue_path"):
            if name in data:
                data[name] = folder / Path(data[name]).expanduser()
        try:
            return cls(**data)
        except TypeError as exc:  # a required setting is missing
            raise ConfigError(f"{path}: {exc}") from exc

    def save(self, path: Path | str) -> None:
        """Write the config, with paths relative to its folder where they lie inside it.
        Written to a temporary file and renamed, so a crash never leaves half a config."""
        path = Path(path)
        folder = path.resolve().parent
        data = asdict(self)
        for name in ("key_path", "queue_path"):
            data[name] = _relative_if_inside(Path(data[name]), folder)
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _relative_if_inside(path: Path, folder: Path) -> str:
    resolved = path.resolve()
    if resolved.is_relative_to(folder):
        return resolved.relative_to(folder).as_posix()
    return str(resolved)
