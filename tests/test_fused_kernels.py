"""The LSTM's compiled element-wise kernels (companion/nn/_fused_kernels.c): used where the
machine builds them, and otherwise a clean fall-back to torch's operations, the same function.
(That both paths compute the same function is tested in test_fused.py, which runs every test
under each.)"""

import os
import subprocess
import sys

import pytest

from companion.nn.fused import compiled_kernels, kernel_status
from test_fused import _machine_can_compile



def test_compiled_kernels_are_in_use_where_the_machine_can_build_them():
    with compiled_kernels(False):
        assert kernel_status().startswith("compiled kernels switched off")
    if _machine_can_compile():
        assert kernel_status() == "compiled kernels in use (companion/nn/_fused_kernels.c)"
    else:
        assert kernel_status().startswith("torch operations in use: ")
    with pytest.raises(TypeError, match="enabled must be True or False"):
        with compiled_kernels("yes"):
            pass


_FALLBACK_SCRIPT = """
import torch
from companion.nn.ensemble import Ensemble
from companion.nn.fused import kernel_status
x = torch.randn(4, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
f = Ensemble("lstm", 2, 5, 1, seeds=[0, 1], dtype=torch.float64, engine="fused")(x)
a = Ensemble("lstm", 2, 5, 1, seeds=[0, 1], dtype=torch.float64)(x)
torch.testing.assert_close(f, a, rtol=1e-12, atol=1e-12)
print(kernel_status())
"""


@pytest.mark.parametrize("env, expected", [
    ({"COMPANION_FUSED_KERNELS": "0"}, "torch operations in use: disabled by COMPANION_FUSED_KERNELS=0"),
    ({"CC": "false"}, "torch operations in use: "),
    ({"CC": "no-such-compiler-here"}, "torch operations in use: no C compiler found"),
], ids=["switched-off", "compiler-fails", "no-compiler"])
def test_the_engine_falls_back_to_torch_operations(env, expected, tmp_path):
    run = subprocess.run([sys.executable, "-c", _FALLBACK_SCRIPT], capture_output=True,
                         text=True, env={**os.environ, "COMPANION_CACHE_DIR": str(tmp_path), **env},
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(expected), run.stdout
    if env.get("CC") == "false":
        assert "could not compile" in run.stdout
