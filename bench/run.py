#!/usr/bin/env python
"""`make bench`: runs every benchmark module in bench/ that defines `main()`.

Each benchmark prints its own figures. Run one alone with `python bench/<name>.py`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    skip = {"run.py", "__init__.py", "receiver.py"}  # _*.py are helpers too
    modules = sorted(p for p in HERE.glob("*.py") if p.name not in skip and not p.name.startswith("_"))
    if not modules:
        print("No benchmarks yet.")
        return 0
    failed = 0
    for path in modules:
        print(f"\n=== bench/{path.name} ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(HERE.parent))
        spec.loader.exec_module(module)
        if hasattr(module, "main"):
            failed += bool(module.main())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
