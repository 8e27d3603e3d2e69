"""Run a function on N CPU processes with the gloo backend (torch.multiprocessing), collecting rank 0's result."""
import os
import socket

import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world_size, port, fn, args, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        out = fn(rank, world_size, *args)
        if rank == 0:
            queue.put(out)
    finally:
        dist.destroy_process_group()


def run_distributed(fn, world_size, *args):
    """``fn(rank, world_size, *args)`` on every rank; returns what rank 0 returned (must be picklable)."""
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    mp.start_processes(_entry, args=(world_size, _free_port(), fn, args, queue), nprocs=world_size,
                       start_method="spawn", join=True)
    return queue.get()
