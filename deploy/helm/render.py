#!/usr/bin/env python3
"""Renders or lints the coredns-healthcheck chart without a helm binary, with Helm's own Go SDK
as a library (the PyPI package helm-python-sdk).

    python3 deploy/helm/render.py [-f VALUES.yaml]... [--namespace NS] [--release NAME]
        prints the rendered manifests (what `helm template` prints), one YAML stream;
    python3 deploy/helm/render.py --lint [-f VALUES.yaml]...
        prints `helm lint --strict`'s result as JSON; exits 1 when it has any message.

Values files are read as Helm reads them (`helm_python.values_from_yaml`), later ones win; the
chart's values.schema.json applies. Used by crates/hc-cli/tests/helm.rs.
"""

import argparse
import json
import os
import sys

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coredns-healthcheck")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-f", "--values", action="append", default=[], help="a values file")
    p.add_argument("--namespace", default="kube-system")
    p.add_argument("--release", default="coredns-healthcheck")
    p.add_argument("--chart", default=CHART)
    p.add_argument("--lint", action="store_true", help="lint instead of rendering")
    a = p.parse_args()
    try:
        import helm_python as helm
    except ImportError:
        print(
            "error: the Python package helm-python-sdk is missing: "
            "python3 -m pip install helm-python-sdk (.ci/run does)",
            file=sys.stderr,
        )
        return 2

    values: dict = {}
    for f in a.values:
        with open(f, encoding="utf-8") as fh:
            values = merge(values, helm.values_from_yaml(fh.read()) or {})

    if a.lint:
        result = helm.lint(a.chart, values, strict=True, namespace=a.namespace)
        print(json.dumps(result, indent=2, sort_keys=True))
        return 1 if result.get("messages") else 0

    chart = helm.Chart.load(a.chart)
    try:
        chart.validate_schema(chart.merge_values(values))
        out = chart.render(values, name=a.release, namespace=a.namespace, is_install=True)
    except helm.HelmError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        chart.close()
    docs = []
    for path in sorted(out):
        if not path.endswith((".yaml", ".yml")):
            continue
        text = out[path].strip()
        if text:
            docs.append(f"# Source: {path}\n{text}\n")
    sys.stdout.write("---\n".join(docs))
    return 0


def merge(base: dict, over: dict) -> dict:
    """Later values files win, maps merged key by key (as `helm -f a -f b`)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


if __name__ == "__main__":
    sys.exit(main())
