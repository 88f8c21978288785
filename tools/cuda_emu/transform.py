#!/usr/bin/env python3
# Copies every .cuh of kvsieve (include/kvsieve/**) and the Python module's .cu (python/src) into
# OUT/inc with the CUDA-only syntax
# rewritten for the host emulator (emu.hpp): kernel launches, __shared__ variables, extern
# dynamic shared memory. Interpreter: any python3 (standard library only).
# usage: transform.py OUT
import pathlib
import re
import sys

here = pathlib.Path(__file__).resolve().parent
src = here.parent.parent / 'include'
dst = pathlib.Path(sys.argv[1]) / 'inc'
sid = [0]


def shared_decl(m):
    sid[0] += 1
    ty, name, dims = m.group(1).strip(), m.group(2), m.group(3) or ''
    return f'auto& {name} = ::emu::shared_var<{ty}{dims}>({sid[0]});'


# The Python module's CUDA translation unit (python/src/device_cache.cu) too, for
# drivers/python_device_cache.cu: it lands in OUT/inc/python_src/.
pysrc = here.parent.parent / 'python' / 'src'
files = [(f, dst / f.relative_to(src)) for f in sorted(src.rglob('*.cuh'))]
files += [(f, dst / 'python_src' / f.name) for f in sorted(pysrc.glob('*.cu'))]

for f, out in files:
    s = f.read_text()
    n0 = s.count('<<<')
    # NAME<<<CFG>>>(ARGS)  ->  ::emu::launch(CFG)(NAME, ARGS)
    s, n = re.subn(r'^([ \t]*)(\S[^\n;]*?)<<<(.*?)>>>\(',
                   lambda m: f'{m.group(1)}::emu::launch({m.group(3)})({m.group(2)}, ', s,
                   flags=re.M | re.S)
    assert n == n0, (f, n, n0)
    s = re.sub(r'extern __shared__ (?:__align__\(\d+\) )?([\w:]+) (\w+)\[\];',
               r'\1* \2 = ::emu::dyn_smem<\1>();', s)
    s = re.sub(r'__shared__ ([\w:<> ]+?) (\w+)(\[[^\]]+\])?;', shared_decl, s)
    assert '__shared__' not in s.replace('// __shared__', ''), f
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(s)
    print(out, n0, 'launches')
