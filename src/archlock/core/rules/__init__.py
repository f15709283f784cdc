"""The rules: each question about a lock, a build or a machine answered once.

`archlock lock` (archlock.lock.fit: refuse a lock before it is written), `archlock verify` and
`archlock repro` (archlock.core.diagnose: findings about the machine they run on) all ask these;
none of them re-decides a rule. Modules, bottom up:

* versions  THE version parser (packaging): a version, or None when it is not one
* wheels    THE wheel-file answers (packaging's filename parser): tags, sizes, system floors
* build     what a lock's torch build is (`Expectations`), whether it serves the env (the
            CUDA-stack rule included) and whether an installed torch is the lock's
* machine   a machine (`Machine`, from a profile or a probe) against a lock: the NVIDIA driver
            against the CUDA floor, the GPU's compute capability, the macOS and glibc floors
"""
