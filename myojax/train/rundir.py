"""The run directory: its lock, its config file (checked on resume), the metrics log, atomic
JSON.

Layout (checkpoints: ``myojax.checkpoint``)::

    RUN/config.json     {"train": TrainConfig, "model": ModelConfig, "data": {"tokenizer", ...}}
    RUN/metrics.jsonl   one JSON object per logged step or evaluation
    RUN/.lock           held (flock) by the run using the directory; states its pid and host
    RUN/.claim          the same kind of lock, held by a process of a study run with --share
                        (experiments.scaling.isoflop_study) from claiming the run to its record

Only process 0 writes here; the others learn its verdict (``prepare_run_dir_on_main``).
``config.json`` is written only once the run has really started (``write_run_config``), so a
command that fails at startup can be corrected and rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import math
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from myojax import checkpoint as ckpt
from myojax import sharding as shd
from myojax.config import ModelConfig
from myojax.files import write_json
from myojax.train.config import TrainConfig
from myojax.train.faults import fault_point

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".lock"


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (different config, malformed files)."""


class RunBusyError(RunDirError):
    """The run directory's lock is held by a live process."""


def run_config(
    train_cfg: TrainConfig, model_cfg: ModelConfig, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ``config.json`` holds; ``data`` describes the tokens (``tokenizer``, ``vocab_size``).
    Run directories written before the ``data`` section resume: missing fields are not compared.
    """
    config = {"train": train_cfg.to_dict(), "model": model_cfg.to_dict()}
    return config if data is None else {**config, "data": data}


# Where the run lives and how it is laid out on devices: free to change on resume (a checkpoint
# restores onto any mesh; microbatches only trade memory for time, the gradient is the same
# mean), unlike everything else, which defines the experiment.
LAYOUT_FIELDS = ("out", "mesh", "min_shard_size", "microbatches")
# How the same model is computed, free to change on resume too: the gradients agree to float
# rounding (README: Gradient modes), and each checkpoint's config records which one trained it.
IMPLEMENTATION_FIELDS = ("attention_impl",)
# When and how many checkpoints are kept, free to change on resume: saving never changes the
# trajectory (e.g. a long run given time-based checkpoints after a preemption).
SAVING_FIELDS = ("checkpoint_interval", "checkpoint_minutes", "keep")
FREE_ON_RESUME = {"train": LAYOUT_FIELDS + SAVING_FIELDS, "model": IMPLEMENTATION_FIELDS}


# A field added since a run directory was written reads as its default there (e.g.
# ``TrainConfig.microbatches``, absent before gradient accumulation: 1).
_DEFAULTS = {
    "train": {f.name: f.default for f in dataclasses.fields(TrainConfig)},
    "model": {f.name: f.default for f in dataclasses.fields(ModelConfig)},
}


def _config_diff(old: dict, new: dict) -> list[str]:
    diffs = []
    for section in ("train", "model", "data"):
        defaults = _DEFAULTS.get(section, {})
        a = {**defaults, **old.get(section, {})}
        b = {**defaults, **new.get(section, {})}
        # data: a newer section; compare only what both runs recorded
        keys = set(a) | set(b) if section != "data" else set(a) & set(b)
        free = FREE_ON_RESUME.get(section, ())
        for k in sorted(keys):
            if k not in free and a.get(k) != b.get(k):
                diffs.append(f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}")
    return diffs


def _extension(old: dict, new: dict) -> int | None:
    """The old step count if ``new`` only asks for more steps than ``old``, else None."""
    before, after = old.get("train", {}).get("steps"), new["train"]["steps"]
    if not isinstance(before, int) or after <= before:
        return None
    same = {**old, "train": {**old["train"], "steps": after}}
    return None if _config_diff(same, new) else before


def _read_config(path: Path, out: Path, *, restore_config: bool) -> dict:
    try:
        old = json.loads(path.read_text())
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
        return old
    except ValueError as e:
        problem = f"{path} is malformed ({e})"
    has_checkpoints = (out / ckpt.CHECKPOINTS).is_dir()
    if restore_config and has_checkpoints:
        try:
            old = ckpt.read_config(out)
        except ckpt.CheckpointError as e:
            raise RunDirError(f"{problem}, and it cannot be restored: {e}") from None
        write_json(path, old)
        print(f"{problem}: restored it from the latest checkpoint", flush=True)
        return old
    if has_checkpoints:
        raise RunDirError(
            f"{problem}; the checkpoints store the run's config: rerun with --restore-config "
            "to rewrite it from the latest checkpoint and resume (--overwrite would discard them)"
        )
    raise RunDirError(
        f"{problem}; pass --overwrite to discard the run directory or choose another --out"
    )


def _discard_run(out: Path) -> None:
    for name in (ckpt.CHECKPOINTS, ckpt.QUARANTINE):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (METRICS_FILE, CONFIG_FILE):
        (out / name).unlink(missing_ok=True)


def prepare_run_dir(
    out: Path, config: dict[str, Any], *, overwrite: bool, restore_config: bool = False
) -> str | None:
    """Check that ``out`` is new or holds this same config (or one with fewer ``steps``: an
    extension); with ``overwrite``, discard it. Writes nothing else: ``write_run_config`` does,
    once the run has started. Returns a line to show the user, or None."""
    path = out / CONFIG_FILE
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _discard_run(out)
    elif path.exists():
        old = _read_config(path, out, restore_config=restore_config)
        before = _extension(old, config)
        if before is not None:
            return (
                f"extending the run from {before} to {config['train']['steps']} steps: the "
                f"cosine schedule is recomputed over {config['train']['steps']} steps, so the "
                f"learning rate changes from step {before} on"
            )
        diffs = _config_diff(old, config)
        if diffs:
            raise RunDirError(
                f"run directory {out} holds a different config ({'; '.join(diffs)}); "
                "choose another --out or pass --overwrite to discard it"
            )
    elif any((out / ckpt.CHECKPOINTS).glob("*")):
        # an empty one was left by a run killed before it wrote its config (the checkpoint
        # manager creates the directory first): a fresh start, not unknown checkpoints
        raise RunDirError(
            f"{out} has checkpoints but no {CONFIG_FILE}; pass --overwrite to "
            "discard them or choose another --out"
        )
    return None


def write_run_config(out: Path, config: dict[str, Any]) -> None:
    """``config.json``, once the run has started (process 0)."""
    write_json(out / CONFIG_FILE, config)


class RunLock:
    """An exclusive ``flock`` on ``RUN/.lock`` for the run's life. The kernel drops it when its
    holder dies, even by kill -9, so a stale lock is simply taken over; the file names the holder
    (pid, host, start time) for the refusal message."""

    def __init__(self, out: Path, name: str = LOCK_FILE):
        self.path = out / name
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock or raise ``RunDirError``; returns a note when a dead holder's lock
        was taken over."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = read_holder(self.path)
            busy = e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)
            # A filesystem without flock (some network mounts): trust a live pid on this host.
            if busy or (holder is not None and holder.alive()):
                os.close(fd)
                raise RunBusyError(
                    f"run directory {self.path.parent} is in use by another run "
                    f"({holder or 'unknown holder'}); "
                    "wait for it to finish (or stop it), or choose another --out"
                ) from None
        previous = read_holder(self.path)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        self._fd = fd
        return (
            None
            if previous is None
            else f"took over the lock of a run that is no longer running ({previous})"
        )

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no holder to report
            with contextlib.suppress(OSError):  # no flock on this filesystem
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who wrote a lock or claim file: its pid, host and start time."""

    pid: int
    host: str
    started: str

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder a lock file names, or None when it names none (released, or garbled)."""
        try:
            h = json.loads(text)
            return cls(int(h["pid"]), str(h["host"]), str(h.get("started", "?")))
        except (ValueError, KeyError, TypeError):
            return None

    def alive(self) -> bool:
        """False only when the pid is known to be gone: another host's pid cannot be checked."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by another user
        return True

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"


def read_holder(path: Path) -> Holder | None:
    """The holder named in a lock file (read without locking it: status reports use it too)."""
    try:
        return Holder.parse(path.read_text())
    except (OSError, UnicodeDecodeError):
        return None


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, rows after the restored step are dropped so the
    file reads as if the run had never been interrupted. The rewrite is atomic (temporary file,
    then rename): a kill during it leaves the old file whole. ``kept``: the rows kept."""

    def __init__(self, path: Path, *, keep_until: int):
        lines, self.kept = [], []
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by kill -9
                if row.get("step", math.inf) <= keep_until:
                    lines.append(line)
                    self.kept.append(row)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w") as f:
            for i, line in enumerate(lines):
                if i == len(lines) // 2:
                    f.flush()
                    fault_point("metrics-rewrite")
                f.write(line + "\n")
        os.replace(tmp, path)
        self._file = path.open("a")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class NoLog:
    """What processes other than 0 write: nothing."""

    def write(self, row: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def set_aside(path: Path) -> Path | None:
    """Rename ``path`` (if it exists) to ``path.<UTC time>``, never overwriting; returns it."""
    if not path.exists():
        return None
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    dest = path.with_name(f"{path.name}.{stamp}")
    n = 0
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.{stamp}-{n}")
    os.replace(path, dest)
    return dest


def prepare_run_dir_on_main(
    out: Path,
    config: dict[str, Any],
    *,
    overwrite: bool,
    restore_config: bool = False,
    lock: RunLock | None = None,
) -> list[str]:
    """Process 0 takes ``lock`` and checks the run directory; the others learn its verdict (and
    wait for it), so a refusal stops every process instead of leaving some in a collective.
    Returns the lines to show the user (process 0; empty elsewhere)."""
    error: Exception | None = None
    notes: list[str] = []
    if shd.is_main_process():
        try:
            if lock is not None and (note := lock.acquire()):
                notes.append(note)
            if note := prepare_run_dir(
                out, config, overwrite=overwrite, restore_config=restore_config
            ):
                notes.append(note)
        except Exception as e:  # any failure (OSError too) must reach the others first
            error = e
    if shd.gather_ints(error is None).min() == 0:
        if lock is not None:
            lock.release()
        if error is not None:
            raise error
        raise RunDirError(f"process 0 refused the run directory {out}; see its log")
    return notes
