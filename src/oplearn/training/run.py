"""A training run: data, model, optimiser and schedule from a :class:`RunConfig`, in a run directory.

The run directory's layout is described in :mod:`oplearn.training.rundir`.

Resuming replays nothing: each epoch's shuffle comes from a generator seeded by
``(seed, epoch)``, so a run killed after epoch ``k`` and resumed reaches the same weights
as an uninterrupted run. A resume may raise ``train.epochs`` (the run then continues past
its former end; the learning-rate schedule is the one of the new length) and change the
runtime settings :data:`RUNTIME_SETTINGS`; anything else must match the saved config.

What is learned is the run's task (``train.task``, :mod:`oplearn.training.tasks`): the loop
here is the same for all of them. A task's own state (e.g. a target cache) is kept in the
checkpoint beside the optimiser's. With ``train.ema_decay`` the weights validated and saved
as the checkpoints' ``model`` are the moving average (:mod:`oplearn.training.averaging`); the
``last`` checkpoint also keeps the optimiser's weights (``trained_model``) and the number of
averaged steps (``average_updates``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from oplearn.config import RunConfig, dump_config, validate_config
from oplearn.errors import ConfigError, OplearnError, TrainingDiverged
from oplearn.paths import output_dir
from oplearn.progress import advance_to
from oplearn.progress import progress as progress_bar
from oplearn.provenance import timestamp, versions
from oplearn.seeding import generator
from oplearn.training import distributed
from oplearn.training.averaging import WeightAverage
from oplearn.training.checkpoint import load_checkpoint, save_checkpoint
from oplearn.training.rundir import (
    BEST,
    CONFIG_FILE,
    LAST,
    LOG_FILE,
    META_FILE,
    checkpoint_path,
    model_from_checkpoint,
    write_json,
)
from oplearn.training.tasks import check_datasets, ensure_dataset, task_class
from oplearn.training.tensorboard import EventLog, check_available


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"config: key 'train.device': '{name}' is not a device (use auto, cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config: train.device is 'cuda' but no CUDA device is available; use --set train.device=cpu")
    return device


def load_run(run_dir: str | Path, which: str = "best") -> tuple[nn.Module, RunConfig]:
    """The trained model of a run directory and its config (``best`` falls back to ``last``);
    :func:`oplearn.training.rundir.open_run` gives everything else about the run."""
    return model_from_checkpoint(load_checkpoint(checkpoint_path(run_dir, which)))


def learning_rate_factor(config: RunConfig, epoch: int) -> float:
    r"""The factor of ``train.lr`` in ``epoch`` (from 0), in closed form so that a resumed run may
    lengthen its schedule: cosine :math:`\tfrac12 (1 + \cos(\pi e / E))`, step
    :math:`\gamma^{\lfloor e / s \rfloor}`, or constant 1."""
    t = config.train
    if t.scheduler == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, t.epochs) / t.epochs))
    if t.scheduler == "step":
        return t.gamma ** (epoch // t.step_size)
    return 1.0


def _scheduler(config: RunConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: learning_rate_factor(config, epoch))


def _mixed_precision(config: RunConfig, device: torch.device) -> tuple[torch.autocast, torch.amp.GradScaler]:
    """The autocast context and gradient scaler for ``train.precision``."""
    precision = config.train.precision
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("config: train.precision=fp16 needs a CUDA device; use bf16 on the CPU")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")
    return autocast, torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _truncate_log(path: Path, last_epoch: int) -> None:
    """Keep the log lines of epochs up to the resumed checkpoint."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= last_epoch]
    path.write_text("".join(line + "\n" for line in lines))


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


#: Config keys that change how a run executes, not what it computes: a resume may change them.
RUNTIME_SETTINGS = frozenset({"train.threads", "train.checkpoint_every"})


def _check_resume_config(run_dir: Path, config: RunConfig, done: int) -> None:
    """Refuse a resume whose config differs from the saved one, but for the runtime settings and a
    ``train.epochs`` no lower than the ``done`` epochs."""
    saved_path = run_dir / CONFIG_FILE
    if not saved_path.exists():
        raise OplearnError(f"cannot resume: '{saved_path}' is missing")
    saved = validate_config(yaml.safe_load(saved_path.read_text())).model_dump(mode="json")
    now = config.model_dump(mode="json")

    def diff(a: object, b: object, prefix: str = "") -> Iterator[str]:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                yield from diff(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b:
            yield prefix[:-1]

    if config.train.epochs < done:
        raise OplearnError(
            f"cannot resume: the run has trained {done} epochs already, more than train.epochs="
            f"{config.train.epochs}; raise train.epochs to continue it"
        )
    differing = [key for key in diff(saved, now) if key not in RUNTIME_SETTINGS | {"train.epochs"}]
    if differing:
        raise OplearnError(
            f"cannot resume: the config differs from the run's saved config in {', '.join(differing)}; "
            "use the same config and overrides, or start a new --out"
        )


def train(config: RunConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> dict:
    """Train the operator described by ``config`` in ``run_dir``; returns a summary dict."""
    run_dir = output_dir(run_dir)
    if resume:
        if not (run_dir / LAST).exists():
            raise OplearnError(f"nothing to resume in '{run_dir}': no {LAST}; drop --resume to start a new run")
        _check_resume_config(run_dir, config, int(load_checkpoint(run_dir / LAST)["epoch"]))
    elif (run_dir / LAST).exists():
        raise OplearnError(f"'{run_dir}' already holds a run; pass --resume to continue it or choose another --out")
    if config.train.tensorboard:
        check_available()
    threads = torch.get_num_threads()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    try:
        return _fit(config, run_dir, resume, progress)
    finally:
        torch.set_num_threads(threads)


def train_to_end(config: RunConfig, run_dir: str | Path, progress: bool = True) -> None:
    """Bring ``run_dir`` to ``config.train.epochs``: start it, resume it if it stopped early, or leave a finished run."""
    last = Path(run_dir) / LAST
    if not last.exists() or load_checkpoint(last)["epoch"] < config.train.epochs:
        train(config, run_dir, resume=last.exists(), progress=progress)


def _fit(config: RunConfig, run_dir: Path, resume: bool, progress: bool) -> dict:
    world, device = distributed.join(resolve_device(config.train.device))
    try:
        return _fit_in(config, run_dir, resume, progress and world.is_main, world, device)
    finally:
        distributed.leave(world)


def _run_meta(run_dir: Path, config: RunConfig, model: nn.Module, resume: bool) -> dict:
    """``run.json`` so far: what the run is, and its earlier training sessions when resumed."""
    from oplearn.models import count_parameters

    earlier = []
    if resume and (run_dir / META_FILE).exists():
        earlier = json.loads((run_dir / META_FILE).read_text()).get("sessions", [])
    return {
        "task": config.train.task,
        "model": config.model.name if config.model is not None else None,
        "parameters": count_parameters(model),
        "data": config.data.path,
        "versions": versions(),
        "sessions": earlier,
    }


def _fit_in(
    config: RunConfig, run_dir: Path, resume: bool, progress: bool, world: distributed.World, device: torch.device
) -> dict:
    distributed.check_batch(config.data.batch_size, world)
    if world.is_main:  # data generation happens once
        if config.data.path is not None:
            check_datasets([config.data.train_spec, *config.data.test])
            ensure_dataset(config.data.train_spec, progress)
            for spec in config.data.test:
                ensure_dataset(spec, progress)
    world.barrier()
    torch.manual_seed(config.seed)
    task = task_class(config.train.task)(config, progress)
    model = task.build_model()
    task.check_model(model)
    model = model.to(device)
    net = DistributedDataParallel(model) if world.distributed else model
    average = WeightAverage(model, config.train.ema_decay) if config.train.ema_decay else None
    evaluated = average.model if average is not None else model  # what is validated and saved
    optimizer = torch.optim.AdamW(
        task.parameter_groups(model), lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    scheduler = _scheduler(config, optimizer)
    autocast, scaler = _mixed_precision(config, device)
    data_info = json.dumps(task.info())

    log_path = run_dir / LOG_FILE
    start_epoch, best_val = 0, math.inf
    if resume:
        state = load_checkpoint(run_dir / LAST, map_location=device)
        model.load_state_dict(state["model"] if average is None else state["trained_model"])
        if average is not None:
            average.model.load_state_dict(state["model"])
            average.updates = int(state["average_updates"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        scaler.load_state_dict(state["scaler"])
        task.load_state_dict(state["task"])
        start_epoch, best_val = int(state["epoch"]), float(state["best_val"])
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):  # the schedule of a lengthened run
            group["lr"] = base * learning_rate_factor(config, start_epoch)
        if world.is_main:
            _truncate_log(log_path, start_epoch)
    elif world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path.unlink(missing_ok=True)
    if world.is_main:  # a resume may have lengthened train.epochs: the saved config follows
        _write_text_atomic(run_dir / CONFIG_FILE, dump_config(config))
    meta = _run_meta(run_dir, config, model, resume)
    session = {
        "started": timestamp(),
        "device": str(device),
        "processes": world.size,
        "threads": torch.get_num_threads(),
        "start_epoch": start_epoch,
        "end_epoch": start_epoch,
        "seconds": 0.0,
    }
    meta["sessions"].append(session)
    session_start = time.perf_counter()

    def checkpoint(epoch: int) -> dict:
        return {
            "config": config.model_dump_json(),
            "data": data_info,
            "model": evaluated.state_dict(),
            "epoch": epoch,
            "best_val": best_val,
        }

    def train_step(batch: torch.Tensor) -> torch.Tensor:
        """Gradients of the mean loss over the global ``batch`` (this rank's share, in
        ``train.accumulate`` micro-batches); returns that mean loss."""
        optimizer.zero_grad(set_to_none=True)
        micro_batches = batch.tensor_split(world.size)[world.rank].tensor_split(config.train.accumulate)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for j, idx in enumerate(micro_batches):
            last = j == len(micro_batches) - 1
            with net.no_sync() if world.distributed and not last else contextlib.nullcontext():
                # An empty share still runs forward and backward (on a stand-in item, weighted 0)
                # so that every rank joins DDP's gradient all-reduce.
                local = task.loss(net, model, idx if len(idx) else batch[:1], device, autocast) * (len(idx) > 0)
                # Weighted so that the summed (and rank-averaged) gradient is that of the global batch mean.
                scaler.scale(local * (len(idx) * world.size / len(batch))).backward()
            loss_sum += local.detach().double() * len(idx)
        return world.sum(loss_sum) / len(batch)

    events = EventLog(run_dir, start_epoch) if config.train.tensorboard and world.is_main else None
    saved_epoch = start_epoch
    n = len(task)
    batch_size = config.data.batch_size
    epochs = config.train.epochs
    # counted in epochs, moved batch by batch: a long epoch shows its progress too
    bar = progress_bar(initial=start_epoch, total=epochs, desc="train", unit="epoch", enabled=progress)
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        task.start_epoch(epoch)
        model.train()
        order = torch.randperm(n, generator=generator(config.seed, 1, epoch))
        total, count = 0.0, 0
        for i in range(0, n, batch_size):
            batch = order[i : i + batch_size]
            batch_loss = train_step(batch)
            if not torch.isfinite(batch_loss):
                kept = (
                    f"the last good checkpoint (epoch {saved_epoch}) is kept in {run_dir / LAST}"
                    if saved_epoch
                    else "no checkpoint had been written yet"
                )
                raise TrainingDiverged(
                    f"training loss became {batch_loss.item()} in epoch {epoch + 1}; {kept}; lower train.lr or check the data"
                )
            if config.train.clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if average is not None:
                average.update(model)
            total += batch_loss.item() * len(batch)
            count += len(batch)
            advance_to(bar, epoch + count / n)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": total / count, "lr": lr}
        record.update(task.validate(evaluated, batch_size, device))
        if "val_relative_l2" in record and record["val_relative_l2"] < best_val:
            best_val = record["val_relative_l2"]
            if world.is_main:
                save_checkpoint(checkpoint(epoch + 1), run_dir / BEST)
        record["seconds"] = time.perf_counter() - t0
        if world.is_main:
            _append_log(log_path, record)
            if events is not None:
                events.write(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", "val_relative_l2")})
        if world.is_main and ((epoch + 1) % config.train.checkpoint_every == 0 or epoch + 1 == epochs):
            state = checkpoint(epoch + 1)
            state.update(
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                scaler=scaler.state_dict(),
                rng=torch.get_rng_state(),
                task=task.state_dict(),
            )
            if average is not None:
                state.update(trained_model=model.state_dict(), average_updates=average.updates)
            save_checkpoint(state, run_dir / LAST)
            saved_epoch = epoch + 1
            session.update(end_epoch=saved_epoch, seconds=round(time.perf_counter() - session_start, 3))
            write_json(run_dir / META_FILE, meta)
    bar.close()
    if not math.isfinite(best_val) and world.is_main:
        save_checkpoint(checkpoint(epochs), run_dir / BEST)
    if events is not None:
        events.close()
    world.barrier()
    return {"run_dir": str(run_dir), "epochs": epochs, "best_val_relative_l2": best_val}
