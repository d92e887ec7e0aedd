"""What the bench/ scripts share: the repository root, where results go, timing, peak memory, a description of
the machine, and writing a JSON result that records the machine and the command line that produced it.

    from bench.common import ROOT, result_path, timed, peak_rss_mb, machine, write_json
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results'


def result_path(name: str) -> Path:
    "bench/results/<name>.json (`name` without the suffix; a name already ending in .json is kept as is)."
    return RESULTS / (name if name.endswith('.json') else f'{name}.json')


class Timer:
    "Wall-clock (`wall`) and process-CPU (`cpu`) seconds of a `with timed():` block, set when the block ends."
    wall: float = 0.0
    cpu: float = 0.0


@contextlib.contextmanager
def timed():
    "`with timed() as t: ...` then `t.wall`, `t.cpu` (seconds; CPU time of this process, all its threads)."
    t = Timer()
    w, c = time.perf_counter(), time.process_time()
    try:
        yield t
    finally:
        t.wall, t.cpu = time.perf_counter() - w, time.process_time() - c


def time_call(fn, *args, **kw):
    "(result, wall seconds, process-CPU seconds) of `fn(*args, **kw)`."
    with timed() as t: r = fn(*args, **kw)
    return r, t.wall, t.cpu


def peak_rss_mb() -> float:
    "Peak resident set size of this process so far (ru_maxrss, Linux: KiB) in MiB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    "Current resident set size of this process in MiB (/proc/self/statm)."
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def peak_cuda_mb(device=None) -> float | None:
    "torch.cuda.max_memory_allocated in MiB, or None without CUDA (torch not imported here unless already loaded)."
    torch = sys.modules.get('torch')
    if torch is None or not torch.cuda.is_available(): return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def peak_memory() -> dict:
    "{'peak_rss_mb': ..., 'peak_cuda_mb': ... (only on CUDA)}."
    out = {'peak_rss_mb': round(peak_rss_mb(), 1)}
    if (c := peak_cuda_mb()) is not None: out['peak_cuda_mb'] = round(c, 1)
    return out


def machine() -> dict:
    "Platform, CPU count, Python/torch versions, torch threads, load average (and the GPU where there is one)."
    d = {'platform': platform.platform(), 'machine': platform.machine(), 'processor': platform.processor() or None,
         'cpu_count': os.cpu_count(), 'python': platform.python_version(), 'load_average': list(os.getloadavg())}
    try:
        import torch
        d.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
        if torch.cuda.is_available():
            d.update(cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(), gpu_count=torch.cuda.device_count())
    except ImportError:
        pass
    return d


def command(argv=None, script=None) -> str:
    "The command line as one string: `python bench/<script> ARGS` (argv None: this process's sys.argv)."
    if argv is None:
        script, argv = script or sys.argv[0], sys.argv[1:]
    try: script = str(Path(script).resolve().relative_to(ROOT))
    except (ValueError, TypeError): script = str(script)
    return ' '.join(['python', script, *map(str, argv)])


def write_json(path, res: dict, echo: bool = True, indent: int = 1) -> Path:
    """Write `res` to `path` (parents created) with the machine description under `run_machine` and the exact
    `sys.argv` under `argv` (keys the script already set are kept); print it if `echo`. Returns the path."""
    res = {**res}
    res.setdefault('run_machine', machine())
    res.setdefault('argv', list(sys.argv))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(res, indent=indent)
    path.write_text(text + '\n')
    if echo: print(text)
    return path
