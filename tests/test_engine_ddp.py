"""foldtree2.engine's distributed helpers in a real 2-process gloo group launched by torchrun.

The test launches this same file under `python -m torch.distributed.run --standalone --nproc_per_node=2`;
run as a script, each rank exercises init_distributed / all_reduce_mean / all_reduce_sum /
broadcast_object / barrier / unwrap_model(DDP) / cleanup_distributed and writes what it saw to a JSON file
that the test process then checks."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worker(out_dir: str):
    import torch
    import torch.distributed as dist
    from foldtree2 import engine

    env = engine.init_distributed()
    res = {'rank': env.rank, 'world_size': env.world_size, 'local_rank': env.local_rank,
           'is_distributed': env.is_distributed, 'is_main': env.is_main, 'device': str(env.device),
           'initialized': dist.is_initialized(), 'backend': dist.get_backend() if dist.is_initialized() else None}
    # rank r contributes r+1 -> mean over 2 ranks = 1.5
    res['mean'] = engine.all_reduce_mean(torch.tensor(float(env.rank + 1)))
    res['mean_py'] = engine.all_reduce_mean(10.0 * (env.rank + 1))
    t = torch.full((3,), float(env.rank + 1))
    res['sum'] = engine.all_reduce_sum(t).tolist()
    obj = {'config': {'lr': 0.1, 'rank_made_me': env.rank}, 'list': [1, 2, 3]} if env.rank == 0 else None
    res['broadcast'] = engine.broadcast_object(obj, src=0)
    res['broadcast_from_1'] = engine.broadcast_object(f'hello from {env.rank}', src=1)
    torch.manual_seed(env.rank)                                     # deliberately different init per rank
    lin = torch.nn.Linear(4, 2)
    ddp = torch.nn.parallel.DistributedDataParallel(lin)           # DDP broadcasts rank 0's parameters
    res['unwrapped_is_module'] = engine.unwrap_model(ddp) is lin
    res['weight'] = engine.unwrap_model(ddp).weight.detach().flatten().tolist()
    bn = torch.nn.BatchNorm1d(3)
    bn(torch.randn(8, 3) + env.rank)                                # running stats differ per rank
    engine.broadcast_buffers(bn, src=0)
    res['bn_mean'] = bn.running_mean.tolist()
    del ddp                                                         # DDP's reducer must not outlive the group
    engine.barrier()
    engine.cleanup_distributed()
    res['initialized_after_cleanup'] = dist.is_initialized()
    Path(out_dir, f'rank{env.rank}.json').write_text(json.dumps(res))


def test_engine_two_gloo_processes():
    out = tempfile.mkdtemp()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
    for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
           str(Path(__file__).resolve()), out]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = [json.loads(Path(out, f'rank{i}.json').read_text()) for i in range(2)]
    for i, x in enumerate(r):
        assert (x['rank'], x['world_size'], x['local_rank']) == (i, 2, i)
        assert x['is_distributed'] and x['initialized'] and x['backend'] == 'gloo' and x['device'] == 'cpu'
        assert x['is_main'] == (i == 0)
        assert x['mean'] == 1.5 and x['mean_py'] == 15.0
        assert x['sum'] == [3.0, 3.0, 3.0]
        assert x['broadcast'] == {'config': {'lr': 0.1, 'rank_made_me': 0}, 'list': [1, 2, 3]}
        assert x['broadcast_from_1'] == 'hello from 1'
        assert x['unwrapped_is_module']
        assert not x['initialized_after_cleanup']
    assert r[0]['weight'] == r[1]['weight']
    assert r[0]['bn_mean'] == r[1]['bn_mean']                     # rank 0's running statistics everywhere          # DDP made both ranks start from rank 0's weights


def test_no_process_group_without_torchrun():
    """A plain single process (no WORLD_SIZE) must not create a process group."""
    code = ('import torch.distributed as dist; from foldtree2 import engine; e = engine.init_distributed(); '
            'assert not dist.is_initialized(); assert (e.world_size, e.is_distributed, e.is_main) == (1, False, True); '
            'assert engine.all_reduce_mean(2.0) == 2.0; print("ok")')
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    proc = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr


if __name__ == '__main__':
    _worker(sys.argv[1])
