"""Command line: ``fastnn info | bench`` (also ``python -m fastnn ...``)."""
from __future__ import annotations

import sys


def _info(argv):
    import fastnn
    from fastnn import selfcheck

    info = fastnn.build_info()
    print("fastnn", info["version"])
    for k, v in info.items():
        if k != "version":
            print(f"  {k:10s} {v}")
    ok = selfcheck.run(verbose=True)
    return 0 if ok else 1


def _bench(argv):
    from fastnn.bench import main

    return main(argv)


COMMANDS = {"info": _info, "bench": _bench}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: fastnn {info|bench} [options]\n"
              "  info   print the build information and self-check every kernel against NumPy\n"
              "  bench  benchmark the kernels against PyTorch (if installed); --quick for a short run")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
