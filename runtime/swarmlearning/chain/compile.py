"""Compile the Vyper contracts into the ABI and bytecode files committed beside them.

    python -m swarmlearning.chain.compile          # rewrite contracts/*.json
    python -m swarmlearning.chain.compile --check  # exit 1 if a committed file is stale

Vyper is a build-time tool (the `test` extra); the runtime reads only the committed JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CONTRACTS_DIR = Path(__file__).with_name("contracts")
VYPER_VERSION = "0.4.3"
# The oldest fork that every target chain supports: external clients here stop at london.
EVM_VERSION = "london"


def compile_contract(source_path: Path) -> dict:
    """The ABI and deployment bytecode of one Vyper source file."""
    import vyper
    from vyper.compiler.settings import Settings

    if vyper.__version__.split("+")[0] != VYPER_VERSION:
        raise RuntimeError(f"contracts are built with vyper {VYPER_VERSION}, "
                           f"found {vyper.__version__}")
    out = vyper.compile_code(source_path.read_text(encoding="utf-8"),
                             output_formats=["abi", "bytecode"],
                             settings=Settings(evm_version=EVM_VERSION))
    return {"contract": source_path.stem, "vyper": VYPER_VERSION, "evm_version": EVM_VERSION,
            "abi": out["abi"], "bytecode": out["bytecode"]}


def render(artifact: dict) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for source in sorted(CONTRACTS_DIR.glob("*.vy")):
        target = source.with_suffix(".json")
        text = render(compile_contract(source))
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print("stale compiled contracts: " + ", ".join(stale) +
              " (run python -m swarmlearning.chain.compile)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
