"""Every scan rule: true positives it must report and guarded code it must NOT report.

Cases are small sources scanned with `scan_source`; each positive names the rule and the line
it must be reported on, each negative must produce no finding of its rule.
"""

from __future__ import annotations

import textwrap

import pytest

from archlock.scan.engine import scan_source
from archlock.scan.rules import RULES


def found(source: str) -> list[tuple[str, int]]:
    return [(f.rule_id, f.line) for f in scan_source(textwrap.dedent(source), "case.py")]


def rules_in(source: str) -> set[str]:
    return {rule for rule, _ in found(source)}


POSITIVES: dict[str, list[str]] = {
    # each case: the rule must be reported on the line marked `# <-`
    "AL101": [
        "import torch\nmodel = Model().cuda()  # <-",
        "import torch\nx = torch.zeros(3, device='cuda')  # <-",
        "import torch\nd = torch.device('cuda')  # <-",
        "import torch\nd = torch.device('cuda:1')  # <-",
        "import torch\nd = torch.device(f'cuda:{rank}')  # <-",
        "import torch\nd = torch.device('cuda:' + str(rank))  # <-",
        "import torch\nd = torch.device('cuda:{}'.format(rank))  # <-",
        "import torch\nd = torch.device(type='cuda')  # <-",
        "import torch as T\nd = T.device('cuda')  # <-",
        "from torch import device\nd = device('cuda')  # <-",
        "x = x.to('cuda')  # <-",
        "x = x.to(device='cuda:0', non_blocking=True)  # <-",
        "device = 'cuda'  # <-",
        "self.device = 'cuda'  # <-",
        "DEVICE: str = 'cuda'  # <-",
        "def train(model, device='cuda'):  # <-\n    pass",
        "def train(model, *, device='cuda'):  # <-\n    pass",
        "import torch\nstate = torch.load(path, map_location='cuda')  # <-",
        "parser.add_argument('--device', default='cuda')  # <-",
        "config = {'device': 'cuda'}  # <-",
        "import torch\nwith torch.autocast('cuda'):  # <-\n    pass",
        "import torch\ndef f(): return Model().cuda()  # <-",
        # a check on the wrong side: the else of a CUDA check is where CUDA is missing
        "import torch\nif torch.cuda.is_available():\n    pass\nelse:\n    device = 'cuda'  # <-",
        # a CPU check is not a CUDA check
        "if device != 'cpu':\n    x = x.cuda()  # <-",
    ],
    "AL102": [
        "import torch\ntorch.cuda.synchronize()  # <-",
        "import torch as T\nT.cuda.synchronize()  # <-",
        "from torch import cuda\ncuda.synchronize()  # <-",
        "from torch.cuda import synchronize\nsynchronize()  # <-",
        "from torch.cuda.amp import autocast\nwith autocast():  # <-\n    pass",
        "import torch\nscaler = torch.cuda.amp.GradScaler()  # <-",
        "import torch\nprint(f'{torch.cuda.get_device_name(0)}')  # <-",
        "import torch\ntorch.cuda.set_device(rank)  # <-",
        "import torch\n@torch.cuda.amp.autocast()  # <-\ndef f(): pass",
        "import torch\nif device != 'cpu':\n    torch.cuda.synchronize()  # <-",
        "import torch\nif torch.cuda.get_device_capability()[0] >= 8:  # <-\n    pass",
        "import torch\nx = torch.cuda.memory_allocated() or torch.cuda.is_available()  # <-",
    ],
    "AL103": [
        "import torch.distributed as dist\ndist.init_process_group(backend='nccl')  # <-",
        "import torch.distributed as dist\ndist.init_process_group('nccl', rank=0)  # <-",
        "import torch\ntorch.distributed.init_process_group(backend='NCCL')  # <-",
        "from torch.distributed import init_process_group\ninit_process_group('nccl')  # <-",
        "from torch import distributed as dist\ndist.init_process_group(\n"
        "    backend='nccl',  # <-\n)",
    ],
    "AL104": [
        "import flash_attn  # <-",
        "from flash_attn.flash_attn_interface import flash_attn_func  # <-",
        "import xformers.ops as xops  # <-",
        "import apex  # <-",
        "from apex import amp  # <-",
        "import bitsandbytes as bnb  # <-",
        "import triton  # <-",
        "import os, flash_attn  # <-",
        "def attention():\n    from flash_attn import flash_attn_func  # <-",
        "try:\n    import flash_attn  # <-\nexcept RuntimeError:\n    pass",
    ],
    "AL105": [
        "import torch\nmodel = torch.compile(model)  # <-",
        "import torch as T\nmodel = T.compile(model)  # <-",
        "from torch import compile\nmodel = compile(model)  # <-",
        "import torch\n@torch.compile  # <-\ndef f(x): return x",
        "import torch\n@torch.compile(mode='max-autotune')  # <-\ndef f(x): return x",
        "import torch\nif args.compile:\n    model = torch.compile(model)  # <-",
    ],
    "AL106": [
        "import torch\nd = torch.device('mps')  # <-",
        "x = x.to('mps')  # <-",
        "device = 'mps'  # <-",
        "import torch\nm = torch.load(p, map_location='mps')  # <-",
        "import torch\ntorch.mps.synchronize()  # <-",
        "import torch\ntorch.mps.empty_cache()  # <-",
        "from torch import mps\nmps.synchronize()  # <-",
        # a platform check is not an MPS check (Intel Macs, old macOS)
        "import sys\nif sys.platform == 'darwin':\n    device = 'mps'  # <-",
    ],
    "AL107": [
        "LIB = '/usr/lib/x86_64-linux-gnu/libcuda.so'  # <-",
        "LIB = '/usr/lib/aarch64-linux-gnu/libcuda.so'  # <-",
        "import os\nos.environ['PATH'] = f'/usr/local/cuda/bin:{os.environ[\"PATH\"]}'  # <-",
        "BREW = '/opt/homebrew/bin/brew'  # <-",
        "import os\nhome = os.environ.get('CUDA_HOME', '/usr/local/cuda')  # <-",
    ],
    "AL108": [
        "import platform\nif platform.machine() == 'x86_64':  # <-\n    pass\nelse:\n"
        "    raise SystemExit",
        "import platform\nif platform.machine() == 'x86_64':  # <-\n    blas = 'mkl'",
        "import platform\nif platform.machine() != 'x86_64':  # <-\n"
        "    raise RuntimeError('x86 only')",
        "import platform\nassert platform.machine() == 'x86_64'  # <-",
        "import platform\nif platform.machine() == 'x86_64':  # <-\n    from mkl import blas",
        "import platform\nif platform.machine() == 'x86_64':  # <-\n    def kernel(): pass",
        "import platform\narch = platform.machine()\nif arch == 'x86_64':  # <-\n    blas = 'mkl'",
        "import platform\nIS_X86 = platform.machine() == 'x86_64'\n"
        "if IS_X86:  # <-\n    blas = 'mkl'",
        "import os\nif os.uname().machine == 'x86_64':  # <-\n    blas = 'mkl'",
        "import platform\nif platform.machine().lower() in ('x86_64', 'amd64'):  # <-\n"
        "    blas = 'mkl'",
        "import platform\nif platform.machine().startswith('x86'):  # <-\n    blas = 'mkl'",
        "from platform import machine\nif machine() == 'AMD64':  # <-\n    blas = 'mkl'",
    ],
    "AL109": [
        "import torch\ndef f(device):\n"
        "    x = torch.zeros(3, dtype=torch.float64, device=device)  # <-\n"
        "    return x.to('mps') if torch.backends.mps.is_available() else x",
        "import torch\nif torch.backends.mps.is_available():\n    pass\n"
        "def f(device):\n    return torch.ones(2, device=device).double()  # <-",
        "import torch\nDEVICE = 'mps' if torch.backends.mps.is_available() else 'cpu'\n"
        "torch.set_default_dtype(torch.double)  # <-",
        "import torch as T\ndef f(x):\n"
        "    return x.to('mps' if T.backends.mps.is_available() else 'cpu', T.float64)  # <-",
    ],
}

NEGATIVES: dict[str, list[str]] = {
    "AL101": [
        "import torch\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'",
        "import torch\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "import torch\nif torch.cuda.is_available():\n    model.cuda()",
        "if device.type == 'cuda':\n    x = x.cuda()",
        "if 'cuda' in str(device):\n    x = x.cuda()",
        "if args.cuda:\n    model.cuda()",
        "if use_gpu:\n    model.cuda()",
        "import torch\ndef f(m):\n    if not torch.cuda.is_available():\n        return m\n"
        "    return m.cuda()",
        "import torch\ndef f(x):\n    if x.device.type != 'cuda':\n        return x\n"
        "    return x.to('cuda:0')",
        "import torch\nfor x in xs:\n    if not torch.cuda.is_available():\n        continue\n"
        "    x.cuda()",
        "import torch\nuse_accel = torch.cuda.is_available() and not args.cpu\n"
        "if use_accel:\n    model.cuda()",
        "import torch\nassert torch.cuda.is_available(), 'needs a GPU'\nmodel.cuda()",
        "import sys, torch\nif torch.cuda.device_count() == 0:\n    sys.exit('no GPU')\n"
        "model.cuda()",
        "import pytest, torch\n@pytest.mark.skipif(not torch.cuda.is_available(), reason='')\n"
        "def test_x():\n    torch.ones(1, device='cuda')",
        "import unittest, torch\nclass T(unittest.TestCase):\n"
        "    @unittest.skipUnless(torch.cuda.is_available(), 'cuda')\n"
        "    def test_x(self):\n        torch.ones(1).cuda()",
        "import pytest, torch\n"
        "pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='')\n"
        "def test_x():\n    torch.ones(1).cuda()",
        "import pytest, torch\ndef test_x():\n    if not torch.cuda.is_available():\n"
        "        pytest.skip('host-lacks: CUDA')\n    torch.ones(1).cuda()",
        "import torch\nx = x.to(device)\ny = y.to('cpu')\nname = 'cuda'",
        "import os\nenv = dict(os.environ, ARCHLOCK_DEVICE='cuda')",
        '"""Call .cuda() on the model; device="cuda" is the default."""',
        "# model.cuda()\npass",
        "import torch\ndevice = ('cuda' if torch.cuda.is_available()\n"
        "          else 'mps' if torch.backends.mps.is_available() else 'cpu')",
    ],
    "AL102": [
        "import torch\nok = torch.cuda.is_available()\nn = torch.cuda.device_count()",
        "import torch\ntorch.cuda.manual_seed_all(0)\ntorch.cuda.manual_seed(0)\n"
        "torch.cuda.empty_cache()",
        "import torch\nif torch.cuda.is_available():\n    torch.cuda.synchronize()",
        "import torch\ntorch.cuda.is_available() and torch.cuda.synchronize()",
        "import torch\ntorch.cuda.synchronize() if torch.cuda.is_available() else None",
        "import torch\n"
        "if torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8:\n    pass",
        "import torch\nnames = []\nfor i in range(torch.cuda.device_count()):\n"
        "    names.append(torch.cuda.get_device_name(i))",
        "import torch\nif x.is_cuda:\n    torch.cuda.synchronize()",
        "import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n"
        "torch.backends.cuda.sdp_kernel()",
        "import torch\nif not torch.cuda.is_available():\n    raise SystemExit('needs CUDA')\n"
        "torch.cuda.synchronize()",
        "from torch import cuda\nif cuda.is_available():\n    cuda.synchronize()",
        "cuda = make_backend()\ncuda.synchronize()",
        "import torch\nif torch.cuda.is_available():\n    pass\n"
        "elif torch.backends.mps.is_available():\n    pass",
        "import torch\nwith_cuda = torch.cuda.is_available()\n"
        "if with_cuda:\n    torch.cuda.synchronize()",
    ],
    "AL103": [
        "import torch, torch.distributed as dist\n"
        "dist.init_process_group(backend='nccl' if torch.cuda.is_available() else 'gloo')",
        "import torch.distributed as dist\ndist.init_process_group(backend=backend)",
        "import torch.distributed as dist\ndist.init_process_group('gloo')",
        "import torch.distributed as dist\ndist.init_process_group(backend='cpu:gloo,cuda:nccl')",
        "import torch, torch.distributed as dist\nif torch.cuda.is_available():\n"
        "    dist.init_process_group('nccl')\nelse:\n    dist.init_process_group('gloo')",
        "import torch.distributed as dist\nif args.num_gpus > 1:\n"
        "    dist.init_process_group('nccl')",
    ],
    "AL104": [
        "try:\n    import flash_attn\nexcept ImportError:\n    flash_attn = None",
        "try:\n    from flash_attn import flash_attn_func\nexcept ModuleNotFoundError:\n"
        "    flash_attn_func = None",
        "try:\n    import xformers.ops\nexcept (OSError, ImportError):\n    pass",
        "try:\n    import apex\nexcept Exception:\n    apex = None",
        "import contextlib\nwith contextlib.suppress(ImportError):\n    import bitsandbytes",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import apex",
        "import importlib.util\nif importlib.util.find_spec('flash_attn'):\n    import flash_attn",
        "import torch\nif torch.cuda.is_available():\n    import triton",
        "if config.use_flash_attn:\n    from flash_attn import flash_attn_func",
        "from .flash_attn import local_kernel\nimport flash_attention_cpu\nimport apexlib",
    ],
    "AL105": [
        "import torch\nif device.type == 'cuda':\n    model = torch.compile(model)",
        "import torch\nif torch.cuda.is_available():\n    model = torch.compile(model)",
        "import torch\nif device.type != 'mps':\n    model = torch.compile(model)",
        "import sys, torch\nif sys.platform != 'darwin':\n    model = torch.compile(model)",
        "import torch\nmodel = torch.compile(model) if torch.cuda.is_available() else model",
        "import torch\nif args.compile and device.type == 'cuda':\n"
        "    model = torch.compile(model)",
        "model.compile()",
    ],
    "AL106": [
        "import torch\ndevice = 'mps' if torch.backends.mps.is_available() else 'cpu'",
        "import torch\nif torch.backends.mps.is_available():\n    x = x.to('mps')",
        "import torch\nif device.type == 'mps':\n    torch.mps.synchronize()",
        "import torch\nif torch.cuda.is_available():\n    d = torch.device('cuda')\n"
        "elif torch.backends.mps.is_available():\n    d = torch.device('mps')\nelse:\n"
        "    d = torch.device('cpu')",
        "import torch\nok = torch.backends.mps.is_available()\ntorch.mps.manual_seed(0)",
        "import torch\nhas_mps = torch.backends.mps.is_available()\n"
        "if has_mps:\n    torch.mps.synchronize()",
        "timestamps = x.to(device)",
    ],
    "AL107": [
        '"""Install CUDA under /usr/local/cuda; Homebrew lives in /opt/homebrew."""',
        "# see /usr/lib/x86_64-linux-gnu\npass",
        "import platform\nif platform.machine() == 'x86_64':\n"
        "    LIB = '/usr/lib/x86_64-linux-gnu'\n"
        "else:\n    LIB = '/usr/lib/aarch64-linux-gnu'",
        "import sys\nif sys.platform == 'darwin':\n    PREFIX = '/opt/homebrew'",
        "import os\nhome = os.environ['CUDA_HOME']\nprefix = '/usr/local'",
    ],
    "AL108": [
        "import platform\nif platform.machine() == 'x86_64':\n    lib = 'mkl'\n"
        "elif platform.machine() == 'aarch64':\n"
        "    lib = 'openblas'",
        "import platform\nif platform.machine() == 'x86_64':\n    flags = ['-mavx2']\nelse:\n"
        "    flags = []",
        "import platform\nif platform.machine() != 'x86_64':\n    use_generic = True",
        "import platform\nif platform.machine() in ('x86_64', 'arm64'):\n    pass",
        "import platform\nif platform.machine() == 'arm64':\n    pass",
        # no else and nothing defined: arm64 simply skips an x86-only nicety
        "import platform, warnings\nif platform.machine() == 'x86_64':\n"
        "    warnings.warn('Intel Macs are slow')",
        "import platform\nif platform.machine() == 'x86_64':\n    flags.append('-mavx2')",
        "import platform\nif platform.machine() == 'x86_64':\n    name = 'x86_64'\nelse:\n"
        "    raise SystemExit('arm64 soon')",
        "import platform\nis_x86 = platform.machine() == 'x86_64'",
        "import platform\nname = 'x86' if platform.machine() == 'x86_64' else 'other'",
        "if machine == 'x86_64':\n    pass",
    ],
    "AL109": [
        "import torch\ndef f(device):\n"
        "    return torch.zeros(3, dtype=torch.float64, device=device)",
        "import torch\nMPS = torch.backends.mps.is_available()\ndef cpu_stats(x):\n"
        "    return x.double().mean()",
        "import torch\nMPS = torch.backends.mps.is_available()\ndef f(x, device):\n"
        "    dtype = torch.float32 if device.type == 'mps' else torch.float64\n"
        "    return x.to(device, dtype)",
        "import torch\nMPS = torch.backends.mps.is_available()\ndef f(x, device):\n"
        "    if device.type != 'mps':\n        x = x.double()\n    return x",
        "import torch\nMPS = torch.backends.mps.is_available()\ndef f(x, device):\n"
        "    if x.dtype == torch.float64:\n        x = x.float()\n    return x.to(device)",
        "import torch\nMPS = torch.backends.mps.is_available()\ndef f(x, device):\n"
        "    if torch.cuda.is_available():\n        return x.to(device).double()\n    return x",
    ],
}


def _cases(table: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(rule, case) for rule, cases in table.items() for case in cases]


@pytest.mark.parametrize(("rule", "source"), _cases(POSITIVES))
def test_rule_reports_true_positive(rule: str, source: str) -> None:
    marked = [i + 1 for i, line in enumerate(source.splitlines()) if line.endswith("# <-")]
    assert (rule, marked[0]) in found(source)


@pytest.mark.parametrize(("rule", "source"), _cases(NEGATIVES))
def test_rule_ignores_guarded_code(rule: str, source: str) -> None:
    reported = rules_in(source)
    assert "AL001" not in reported  # the case must parse, or it proves nothing
    assert rule not in reported


def test_every_check_rule_has_positive_and_negative_cases() -> None:
    check_rules = {rule.id for rule in RULES if rule.id.startswith("AL1")}
    assert check_rules == set(POSITIVES) == set(NEGATIVES)


def test_rule_catalogue_is_complete_and_unique() -> None:
    ids = [rule.id for rule in RULES]
    names = [rule.name for rule in RULES]
    assert len(set(ids)) == len(ids) and len(set(names)) == len(names)
    for rule in RULES:
        assert rule.severity in ("error", "warning", "note")
        assert rule.doc and rule.fix and "\n" not in rule.doc + rule.fix


def test_column_counts_characters_not_bytes() -> None:
    (finding,) = scan_source("label = 'é'; m = Model().cuda()\n", "x.py")
    assert (finding.rule_id, finding.line, finding.col) == ("AL101", 1, 18)


def test_aliases_resolve_through_import_forms() -> None:
    source = """
        import torch.distributed
        import torch.cuda as tc
        torch.distributed.init_process_group("nccl")
        tc.synchronize()
    """
    assert found(source) == [("AL103", 4), ("AL102", 5)]
