#!/usr/bin/env python3
"""Mutation testing of fastnn with a curated, versioned list of mutants (tools/mutants.toml).

Each mutant names a file, the exact text of one line (stripped; `occurrence` picks the
n-th such line when the text repeats) and its replacement. The tool copies the
repository (csrc, python, tests, CMakeLists.txt, pyproject.toml) into a scratch tree
build/mutate-scratch/src once, configures one developer build there
(build/mutate-scratch/build, reused: a C++ mutant recompiles only the objects that
include its file), and then for every mutant, one at a time:

  1. applies it to the scratch copy (a line that is not found is reported "stale":
     the line moved or changed; fix the list, nothing is silently skipped),
  2. rebuilds (C++ only; a mutant that does not compile is reported "no-build"),
  3. runs its family's test files with `pytest -x -q` under a timeout,
  4. restores the file, its timestamps and the original objects (no second compile).

A mutant is killed when a test fails (the first failing test is reported), survived
when all pass. A mutant marked `equivalent = "reason"` is still run; if it survives it
counts as documented-equivalent, if it is killed the note is wrong and says so.

Usage: python tools/mutate.py [--list] [--family NAME] [--id ID] [--jobs 1]
       [--timeout S] [--json PATH] [--keep-scratch]
Writes a table to stdout and a JSON summary to bench/results/mutation-latest.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = os.path.join(ROOT, "tools", "mutants.toml")
SCRATCH = os.path.join(ROOT, "build", "mutate-scratch")
SRC = os.path.join(SCRATCH, "src")
BDIR = os.path.join(SCRATCH, "build")
COPY = ["csrc", "python", "tests", "CMakeLists.txt", "pyproject.toml"]


def load(path=LIST):
    with open(path, "rb") as f:
        data = tomllib.load(f)
    fams = data.get("family", {})
    muts = data.get("mutant", [])
    seen = set()
    for m in muts:
        for key in ("id", "family", "file", "original", "replacement"):
            if key not in m:
                raise SystemExit(f"mutants.toml: mutant {m.get('id', '?')}: missing '{key}'")
        if m["id"] in seen:
            raise SystemExit(f"mutants.toml: duplicate id {m['id']}")
        seen.add(m["id"])
        if m["family"] not in fams:
            raise SystemExit(f"mutants.toml: mutant {m['id']}: unknown family {m['family']}")
    return data.get("version", 0), fams, muts


def find_line(lines, original, occurrence):
    """Index of the occurrence-th (1-based) line whose stripped text is `original`."""
    want = original.strip()
    hits = [i for i, ln in enumerate(lines) if ln.strip() == want]
    if len(hits) < occurrence:
        return None, len(hits)
    return hits[occurrence - 1], len(hits)


def run(cmd, cwd=None, env=None, timeout=None):
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True)


def prepare_scratch():
    """Fresh copy of the sources (tests included) over the scratch tree; the build dir
    is kept, so only what changed since the last run recompiles."""
    os.makedirs(SRC, exist_ok=True)
    for entry in COPY:
        src, dst = os.path.join(ROOT, entry), os.path.join(SRC, entry)
        if os.path.isdir(src):
            # copy2 keeps mtimes: unchanged files do not rebuild
            shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=_copy_if_changed,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis"))
        else:
            _copy_if_changed(src, dst)
    pybind_dir = run([sys.executable, "-c", "import pybind11; print(pybind11.get_cmake_dir())"]).stdout.strip()
    if not os.path.exists(os.path.join(BDIR, "build.ninja")):
        r = run(["cmake", "-S", SRC, "-B", BDIR, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                 f"-Dpybind11_DIR={pybind_dir}", "-DFASTNN_CUDA=OFF"])
        if r.returncode:
            raise SystemExit("cmake configure failed:\n" + r.stderr)
    r = run(["cmake", "--build", BDIR])
    if r.returncode:
        raise SystemExit("scratch build of the unmutated sources failed:\n" + r.stdout[-3000:] + r.stderr[-3000:])
    site = os.path.join(BDIR, "site", "fastnn")
    shutil.rmtree(os.path.join(BDIR, "site"), ignore_errors=True)
    os.makedirs(site)
    for f in os.listdir(os.path.join(SRC, "python", "fastnn")):
        os.symlink(os.path.join(SRC, "python", "fastnn", f), os.path.join(site, f))
    for f in os.listdir(BDIR):
        if f.startswith("_core") and f.endswith(".so"):
            os.symlink(os.path.join(BDIR, f), os.path.join(site, f))
    return os.path.join(BDIR, "site")


def _copy_if_changed(src, dst):
    try:
        if os.path.getsize(src) == os.path.getsize(dst):
            with open(src, "rb") as a, open(dst, "rb") as b:
                if a.read() == b.read():
                    return dst
    except OSError:
        pass
    return shutil.copy2(src, dst)


def objects_of(path):
    """Build outputs that depend on `path` (objects through the ninja deps log, and the
    extension module and static library they are linked into)."""
    out = run(["ninja", "-C", BDIR, "-t", "deps"]).stdout
    objs, cur = [], None
    for ln in out.splitlines():
        if ln and not ln[0].isspace():
            cur = ln.split(":")[0]
        elif ln.strip() and cur and os.path.abspath(os.path.join(BDIR, ln.strip())) == path:
            objs.append(cur)
    linked = [f for f in os.listdir(BDIR) if (f.startswith("_core") and f.endswith(".so")) or f.endswith(".a")]
    return [os.path.join(BDIR, o) for o in objs] + [os.path.join(BDIR, f) for f in linked]


def first_failure(text):
    for ln in text.splitlines():
        if ln.startswith("FAILED ") or ln.startswith("ERROR "):
            return ln.split(" ", 1)[1].split(" - ")[0].strip()
    for ln in text.splitlines():
        if "Fatal Python error" in ln or "Segmentation fault" in ln or "Aborted" in ln:
            return ln.strip()
    return "(non-zero exit, see log)"


def run_mutant(m, fams, site, timeout):
    t0 = time.time()
    rel = m["file"]
    path = os.path.join(SRC, rel)
    res = {"id": m["id"], "family": m["family"], "file": rel, "measurement": bool(m.get("measurement")),
           "equivalent": m.get("equivalent")}
    if not os.path.exists(path):
        res.update(status="stale", detail="file not found")
        return res
    with open(path) as f:
        text = f.read()
    lines = text.split("\n")
    idx, nhits = find_line(lines, m["original"], int(m.get("occurrence", 1)))
    if idx is None:
        res.update(status="stale", detail=f"original line found {nhits} time(s)")
        return res
    if nhits > 1 and "occurrence" not in m:
        res.update(status="stale", detail=f"original line is ambiguous ({nhits} matches): give occurrence")
        return res
    res["line"] = idx + 1
    st = os.stat(path)
    indent = lines[idx][: len(lines[idx]) - len(lines[idx].lstrip())]
    mutated = list(lines)
    mutated[idx] = indent + m["replacement"].strip()
    cpp = not rel.endswith(".py")
    saved = []
    try:
        if cpp:
            save_dir = os.path.join(SCRATCH, "saved")
            shutil.rmtree(save_dir, ignore_errors=True)
            os.makedirs(save_dir)
            for i, o in enumerate(objects_of(path)):
                if os.path.exists(o):
                    keep = os.path.join(save_dir, f"{i}_{os.path.basename(o)}")
                    shutil.copy2(o, keep)
                    saved.append((o, keep))
        with open(path, "w") as f:
            f.write("\n".join(mutated))
        if cpp:
            b = run(["cmake", "--build", BDIR], timeout=900)
            res["build_s"] = round(time.time() - t0, 1)
            if b.returncode:
                log = b.stdout + b.stderr
                if "static assertion failed" in log or "static_assert" in log:
                    # a compile-time check of the code itself (not a typo in the list) caught it
                    res.update(status="killed", caught_by="compiler: static_assert")
                else:
                    res.update(status="no-build", detail=log[-400:])
                return res
        env = dict(os.environ, PYTHONPATH=site, PYTHONDONTWRITEBYTECODE="1")
        tests = fams[m["family"]]["tests"]
        t1 = time.time()
        try:
            r = run([sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                     "-W", "ignore"], cwd=SRC, env=env, timeout=timeout)
            res["test_s"] = round(time.time() - t1, 1)
            if r.returncode == 0:
                res.update(status="survived")
            elif r.returncode == 5:
                res.update(status="error", detail="no tests collected")
            else:
                res.update(status="killed", caught_by=first_failure(r.stdout + r.stderr))
        except subprocess.TimeoutExpired:
            res["test_s"] = round(time.time() - t1, 1)
            res.update(status="killed", caught_by=f"timeout after {timeout} s (a hang counts as caught)")
    finally:
        with open(path, "w") as f:
            f.write(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        for o, keep in saved:
            shutil.copy2(keep, o)
        if cpp:
            if "no work to do" not in run(["ninja", "-C", BDIR, "-n"]).stdout:
                run(["cmake", "--build", BDIR])  # restored sources: anything rebuilt is the original
    res["seconds"] = round(time.time() - t0, 1)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--family", action="append", help="only this family's mutants (repeatable)")
    ap.add_argument("--id", action="append", help="only this mutant (repeatable)")
    ap.add_argument("--measurement", action="store_true", help="only the issue-23 measurement mutants")
    ap.add_argument("--jobs", type=int, default=1, help="mutants at a time (only 1 is supported: one build dir)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant's test run")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "mutation-latest.json"))
    ap.add_argument("--mutants", default=LIST)
    a = ap.parse_args()
    if a.jobs != 1:
        raise SystemExit("--jobs: only 1 is supported (the mutants share one scratch build)")
    version, fams, muts = load(a.mutants)
    if a.family:
        bad = [f for f in a.family if f not in fams]
        if bad:
            raise SystemExit(f"--family: unknown {bad}; known: {sorted(fams)}")
        muts = [m for m in muts if m["family"] in a.family]
    if a.id:
        known = {m["id"] for m in muts}
        bad = [i for i in a.id if i not in known]
        if bad:
            raise SystemExit(f"--id: unknown {bad}")
        muts = [m for m in muts if m["id"] in a.id]
    if a.measurement:
        muts = [m for m in muts if m.get("measurement")]
    if a.list:
        for m in muts:
            flag = ("M" if m.get("measurement") else " ") + ("E" if m.get("equivalent") else " ")
            print(f"{m['id']:<34} {flag} {m['family']:<10} {m['file']}")
        print(f"{len(muts)} mutants (list version {version}); M = issue-23 measurement, E = documented equivalent")
        return 0
    t0 = time.time()
    site = prepare_scratch()
    setup_s = time.time() - t0
    results = []
    print(f"{'id':<34} {'status':<9} {'secs':>6}  caught by / detail", flush=True)
    for m in muts:
        r = run_mutant(m, fams, site, a.timeout)
        results.append(r)
        status = r["status"]
        if status == "survived" and r.get("equivalent"):
            status = "equiv"
        print(f"{r['id']:<34} {status:<9} {r.get('seconds', 0):>6}  {r.get('caught_by') or r.get('detail') or ''}",
              flush=True)
    killed = sum(r["status"] == "killed" for r in results)
    equiv = sum(r["status"] == "survived" and bool(r.get("equivalent")) for r in results)
    survived = [r["id"] for r in results if r["status"] == "survived" and not r.get("equivalent")]
    wrong_equiv = [r["id"] for r in results if r["status"] == "killed" and r.get("equivalent")]
    other = [r["id"] for r in results if r["status"] not in ("killed", "survived")]
    meas = [r for r in results if r["measurement"]]
    total_s = time.time() - t0
    summary = {
        "list_version": version, "mutants": len(results), "killed": killed, "equivalent": equiv,
        "survived": survived, "stale_or_error": other, "equivalent_but_killed": wrong_equiv,
        "kill_ratio": round(killed / max(1, len(results) - equiv), 4),
        "measurement": {"mutants": len(meas), "killed": sum(r["status"] == "killed" for r in meas)},
        "setup_s": round(setup_s, 1), "total_s": round(total_s, 1),
        "cpu": "AMD EPYC Zen 4, 2 cores (shared)", "results": results,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"\n{len(results)} mutants: {killed} killed, {equiv} documented equivalent, {len(survived)} survived "
          f"{survived or ''}, {len(other)} stale/no-build/error {other or ''}; measurement "
          f"{summary['measurement']['killed']}/{len(meas)} killed; kill ratio {summary['kill_ratio']:.1%} "
          f"(of non-equivalent); {total_s:.0f} s (setup {setup_s:.0f} s). JSON: {a.json}")
    return 0 if not survived and not other and not wrong_equiv else 1


if __name__ == "__main__":
    sys.exit(main())
