# SPDX-FileCopyrightText: 2026 kvsieve contributors
# SPDX-License-Identifier: Apache-2.0
"""The CUDA cache (`kvsieve.Cache(..., device="cuda")`) against the host cache on the same
inputs: outputs, per-head choices and kept counts, bytes. The GPU tests skip, saying why, when
the module was built without CUDA or torch sees no GPU; the first group runs everywhere."""

import ctypes

import numpy as np
import pytest

import kvsieve
from conftest import qkv

HQ, HKV, D, LAYERS, PAGE = 8, 2, 64, 2, 16


# ---- everywhere ------------------------------------------------------------------------------


def test_cuda_flags_are_bools_and_consistent():
    assert isinstance(kvsieve.cuda_built(), bool)
    assert isinstance(kvsieve.cuda_available(), bool)
    assert not kvsieve.cuda_available() or kvsieve.cuda_built()
    names = kvsieve.cuda_policy_names
    assert isinstance(names, tuple)
    assert bool(names) == kvsieve.cuda_built()
    assert set(names) <= set(kvsieve.builtin_policy_names)
    if kvsieve.cuda_built():
        assert "fastgen" in names


def test_host_cache_is_on_the_cpu():
    cache = kvsieve.Cache(1, HKV, D, n_head_q=HQ, device="cpu")
    assert cache.device == "cpu"
    cache.synchronize()  # no-ops on the host
    cache.clear_error()


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "cuda:-1", "cpu:0", ""])
def test_bad_device_strings(device):
    with pytest.raises(kvsieve.InvalidArgumentError, match="is not 'cpu', 'cuda' or 'cuda:N'"):
        kvsieve.Cache(1, HKV, D, device=device)


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


_alive = []  # what the fake capsules point into


def fake_cuda_array(array, device_id=0):
    """A DLPack capsule (unversioned, no deleter) saying that `array`, a float32 numpy array,
    lives on CUDA device `device_id`: kvsieve must refuse it by its device, reading none of it.
    It stands in for a torch CUDA tensor on a machine without a GPU."""
    shape = (ctypes.c_int64 * array.ndim)(*array.shape)
    mt = _DLManagedTensor()
    mt.dl_tensor.data = array.ctypes.data
    mt.dl_tensor.device = _DLDevice(2, device_id)  # kDLCUDA
    mt.dl_tensor.ndim = array.ndim
    mt.dl_tensor.dtype = _DLDataType(2, 32, 1)  # kDLFloat, 32 bits
    mt.dl_tensor.shape = shape
    _alive.append((array, shape, mt))
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(ctypes.addressof(mt), b"dltensor", None)


def test_host_cache_refuses_cuda_arrays_by_their_device(rng):
    cache = kvsieve.Cache(1, HKV, D, n_head_q=HQ)
    q, k, v = qkv(rng, 4, HQ, HKV, D)
    out, cls = np.empty_like(q), np.zeros(4, np.uint8)
    with pytest.raises(TypeError, match="q is on cuda:0, but this cache is on the CPU: move it "
                                        "with .cpu\\(\\), or make the cache with device='cuda'"):
        cache.prefill_into(0, fake_cuda_array(q), k, v, cls, out)
    with pytest.raises(TypeError, match="out is on cuda:1, but this cache is on the CPU"):
        cache.prefill_into(0, q, k, v, cls, fake_cuda_array(out, 1))
    with pytest.raises(TypeError, match="v is on cuda:0"):
        cache.decode_into(0, q[0], k[0], fake_cuda_array(v[0]), 0, out[0])
    assert cache.length(0, 0) == 0  # nothing ran


@pytest.mark.skipif(kvsieve.cuda_available(), reason="checks the answer without a usable GPU")
def test_cuda_cache_without_a_gpu_raises_device_error():
    # Built without CUDA: kvsieve says so. Built with CUDA on a machine without a GPU or driver:
    # the CUDA runtime's error, as kvsieve.DeviceError (a RuntimeError), never a crash.
    match = "built without CUDA" if not kvsieve.cuda_built() else "cuda"
    with pytest.raises(kvsieve.DeviceError, match=match):
        kvsieve.Cache(1, HKV, D, n_head_q=HQ, max_pages=64, device="cuda")
    with pytest.raises(RuntimeError):
        kvsieve.Cache(1, HKV, D, n_head_q=HQ, max_pages=64, device="cuda:0", dtype="bfloat16")


@pytest.mark.skipif(not kvsieve.cuda_built(), reason="kvsieve was built without CUDA")
def test_policies_left_out_of_the_cuda_build_are_refused_before_any_cuda_call():
    host_only = [n for n in kvsieve.builtin_policy_names if n not in kvsieve.cuda_policy_names]
    for name in host_only:
        with pytest.raises(kvsieve.InvalidArgumentError, match=f"policy '{name}' runs on the host"):
            kvsieve.Cache(1, HKV, D, n_head_q=HQ, max_pages=64, policy=name, device="cuda")
    with pytest.raises(kvsieve.InvalidArgumentError, match="unknown policy 'h3o'"):
        kvsieve.Cache(1, HKV, D, max_pages=64, policy="h3o", device="cuda")


# ---- with a GPU ------------------------------------------------------------------------------

try:
    import torch
except ImportError:  # the tests above still run
    torch = None


def _why_no_gpu():
    if not kvsieve.cuda_built():
        return "kvsieve was built without CUDA"
    if torch is None:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no GPU)"
    return None


needs_gpu = pytest.mark.skipif(_why_no_gpu() is not None, reason=_why_no_gpu() or "")


def make(device, policy="fastgen", dtype="float32", **kw):
    args = dict(n_head_q=HQ, page_size=PAGE, max_pages=4096, policy=policy, threshold=0.9,
                budget=24, dtype=dtype)
    args.update(kw)
    return kvsieve.Cache(LAYERS, HKV, D, device=device, **args)


def prompt_classes(n):
    c = np.zeros(n, np.uint8)
    c[0] = kvsieve.TokenClass.SPECIAL
    c[5::7] = kvsieve.TokenClass.PUNCTUATION
    return c


def run_both(rng, policy, dtype="float32", tensor_dtype=None, n=48, steps=12):
    """The same prompt and steps through a host and a CUDA cache; outputs as float64 numpy."""
    tensor_dtype = tensor_dtype or torch.float32
    q, k, v = (torch.from_numpy(x).to(tensor_dtype) for x in qkv(rng, n + steps, HQ, HKV, D))
    cls = prompt_classes(n)
    host, dev = make("cpu", policy, dtype), make("cuda", policy, dtype)
    outs = {"cpu": [], "cuda": []}
    for cache, name in ((host, "cpu"), (dev, "cuda")):
        qd, kd, vd = (x.to(name) for x in (q, k, v))
        for layer in range(LAYERS):
            outs[name].append(cache.prefill(layer, qd[:n], kd[:n], vd[:n], cls))
        for t in range(n, n + steps):
            for layer in range(LAYERS):
                outs[name].append(cache.decode(layer, qd[t], kd[t], vd[t]))
    as_np = {name: [o.float().cpu().numpy().astype(np.float64) for o in outs[name]]
             for name in outs}
    return host, dev, as_np


def expect_same_reports(host, dev):
    a, b = host.report(), dev.report()
    assert [(h.layer, h.kv_head, h.label, h.kept, h.length) for h in b.heads] == [
        (h.layer, h.kv_head, h.label, h.kept, h.length) for h in a.heads
    ]
    assert b.policy_counts == a.policy_counts
    assert b.bytes_resident == a.bytes_resident
    assert b.bytes_full == a.bytes_full
    assert b.kv_bytes_kept == a.kv_bytes_kept
    assert b.mean_kept_fraction == pytest.approx(a.mean_kept_fraction, rel=1e-9)


@needs_gpu
@pytest.mark.parametrize("policy", ["fastgen", "full", "h2o", "tova", "snapkv", "pyramidkv",
                                    "adakv"])
def test_cuda_cache_equals_host_cache(rng, policy):
    if policy not in kvsieve.cuda_policy_names:
        pytest.skip(f"{policy} is not in this build's kvsieve.cuda_policy_names")
    host, dev, outs = run_both(rng, policy)
    assert dev.device.startswith("cuda:")
    assert dev.ladder == host.ladder
    for a, b in zip(outs["cpu"], outs["cuda"]):
        np.testing.assert_allclose(b, a, atol=2e-4, rtol=1e-4)
    expect_same_reports(host, dev)


@needs_gpu
def test_bfloat16_pages_and_tensors(rng):
    # bfloat16 pages on both; bfloat16 tensors widened on the device (cuda) and on the host (cpu).
    host, dev, outs = run_both(rng, "fastgen", dtype="bfloat16", tensor_dtype=torch.bfloat16)
    for a, b in zip(outs["cpu"], outs["cuda"]):
        np.testing.assert_allclose(b, a, atol=2e-2, rtol=2e-2)
    expect_same_reports(host, dev)


@needs_gpu
def test_outputs_are_cuda_tensors_written_in_place(rng):
    q, k, v = (torch.from_numpy(x).cuda() for x in qkv(rng, 20, HQ, HKV, D))
    cache = make("cuda")
    out = torch.empty_like(q)
    assert cache.prefill(0, q, k, v, out=out) is out
    assert cache.prefill(1, q, k, v).device == q.device
    step = cache.decode(0, q[0], k[0], v[0])
    assert step.is_cuda and step.shape == (HQ, D) and step.dtype == torch.float32


@needs_gpu
def test_runs_on_torchs_current_stream(rng):
    q, k, v = (torch.from_numpy(x).cuda() for x in qkv(rng, 40, HQ, HKV, D))
    ref = make("cuda")
    expected = [ref.prefill(0, q[:32], k[:32], v[:32])]
    expected += [ref.decode(0, q[t], k[t], v[t]) for t in range(32, 40)]
    side = torch.cuda.Stream()
    cache = make("cuda")  # made on the default stream, called on another: events order them
    with torch.cuda.stream(side):
        got = [cache.prefill(0, q[:32], k[:32], v[:32])]
        got += [cache.decode(0, q[t], k[t], v[t]) for t in range(32, 40)]
    torch.cuda.synchronize()
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a)


@needs_gpu
def test_wrong_tensors_raise_kvsieves_errors(rng):
    cache = make("cuda")
    q, k, v = qkv(rng, 8, HQ, HKV, D)
    with pytest.raises(TypeError, match="q is on cpu, but this cache is on cuda:"):
        cache.prefill(0, torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v))
    qc, kc, vc = (torch.from_numpy(x).cuda() for x in (q, k, v))
    with pytest.raises(TypeError, match="q has dtype code"):
        cache.prefill(0, qc.half(), kc.half(), vc.half())
    with pytest.raises(TypeError, match="must share one dtype"):
        cache.prefill(0, qc, kc.bfloat16(), vc)
    with pytest.raises(ValueError, match="not C-contiguous"):
        cache.prefill(0, qc.transpose(0, 1), kc, vc)
    with pytest.raises(kvsieve.ShapeError):
        cache.prefill(0, qc[:, :HKV].contiguous(), kc, vc)
    with pytest.raises(kvsieve.StateError):
        cache.decode(0, qc[0], kc[0], vc[0])
    host = make("cpu")
    with pytest.raises(TypeError, match="q is on cuda:0, but this cache is on the CPU"):
        host.prefill(0, qc, kc, vc)


@needs_gpu
def test_device_pool_needs_max_pages():
    with pytest.raises(kvsieve.InvalidArgumentError, match="max_pages"):
        kvsieve.Cache(1, HKV, D, n_head_q=HQ, device="cuda")  # the pool is allocated up front


@needs_gpu
def test_sticky_decode_error_arrives_as_kvsieve_error(rng):
    # A pool of exactly the prompt's pages: the first decode step that needs a page fails on the
    # device; the error surfaces at the next synchronising call until clear_error().
    n = 2 * PAGE
    q, k, v = (torch.from_numpy(x).cuda() for x in qkv(rng, n + 1, HQ, HKV, D))
    cache = kvsieve.Cache(1, HKV, D, n_head_q=HQ, page_size=PAGE, max_pages=2 * HKV,
                          policy="full", device="cuda")
    cache.prefill(0, q[:n], k[:n], v[:n])
    cache.decode(0, q[n], k[n], v[n])
    with pytest.raises(kvsieve.OutOfMemoryError, match="page pool exhausted"):
        cache.synchronize()
    with pytest.raises(MemoryError):
        cache.report()
    cache.clear_error()
    assert cache.length(0, 0) == n  # the failed step changed nothing
    cache.report()
    cache.release(0)
    assert cache.length(0, 0) == 0
    cache.prefill(0, q[:n], k[:n], v[:n])  # usable again


@needs_gpu
def test_head_profile_replays_on_cuda(rng):
    host, dev, _ = run_both(rng, "fastgen", steps=0)
    profile = dev.profile()

    def choices(p):  # `recovered` is the device's float sums, equal to the host's to rounding
        return [(h.layer, h.kv_head, h.choice, h.policy, h.budget) for h in p.heads]

    assert choices(profile) == choices(host.profile())
    assert [h.recovered for h in profile.heads] == pytest.approx(
        [h.recovered for h in host.profile().heads], abs=1e-5)
    replay = make("cuda", profile=profile)
    q, k, v = (torch.from_numpy(x).cuda() for x in qkv(rng, 48, HQ, HKV, D))
    for layer in range(LAYERS):
        replay.prefill(layer, q, k, v, prompt_classes(48))
    assert [h.policy for h in replay.report().heads] == [h.policy for h in dev.report().heads]
