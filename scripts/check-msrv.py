#!/usr/bin/env python3
"""Checks that the declared minimum Rust version (the workspace's `rust-version`) holds for what
is not checked by building with it: every workspace crate declares the workspace's version, and
every crate that Cargo.lock resolves into the build of a published crate (normal and build
dependencies, on Linux) declares a `rust-version` no newer. Uses of the standard library newer
than it are clippy's `incompatible_msrv` lint, which `cargo clippy -D warnings` in .ci/run
denies. A dependency that declares no rust-version is listed, not failed.

    python3 scripts/check-msrv.py

Exit status 0 when it holds, 1 with the offending crates named.
"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version(v: str) -> tuple[int, ...]:
    """`1.89` and `1.89.0` alike."""
    parts = [int(p) for p in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main() -> int:
    with open(ROOT / "Cargo.toml", "rb") as f:
        msrv = tomllib.load(f)["workspace"]["package"]["rust-version"]
    meta = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--locked",
             "--filter-platform", "x86_64-unknown-linux-gnu"],
            cwd=ROOT,
        )
    )
    packages = {p["id"]: p for p in meta["packages"]}
    members = [packages[i] for i in meta["workspace_members"]]
    problems = []
    for p in members:
        if p["rust_version"] != msrv:
            problems.append(f"{p['name']}: rust-version {p['rust_version']}, not the workspace's {msrv}")

    # Walk the resolve graph from the published crates through normal and build edges only.
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    published = [p["id"] for p in members if p.get("publish") != []]
    seen, todo = set(), list(published)
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if kinds & {None, "build"} and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    undeclared = []
    for pid in sorted(seen, key=lambda i: packages[i]["name"]):
        p = packages[pid]
        if pid in meta["workspace_members"]:
            continue
        rv = p["rust_version"]
        if rv is None:
            undeclared.append(f"{p['name']} {p['version']}")
        elif version(rv) > version(msrv):
            problems.append(f"{p['name']} {p['version']} needs Rust {rv} (> {msrv})")
    print(f"check-msrv: rust-version {msrv}; {len(members)} workspace crates, "
          f"{len(seen)} crates in the published crates' builds")
    if undeclared:
        print(f"check-msrv: {len(undeclared)} declare no rust-version: {', '.join(undeclared)}")
    for p in problems:
        print(f"check-msrv: {p}", file=sys.stderr)
    if problems:
        print("check-msrv: pin an older version (cargo update -p NAME --precise V) or raise "
              "rust-version in Cargo.toml, the README and docs/testing.md", file=sys.stderr)
        return 1
    print("check-msrv: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
