"""`hostwatch dashboards build|render|list` (argparse); `register(subparsers)` adds them."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dashboards import provisioning
from hostwatch.core.config import EXIT_USAGE
from hostwatch.core.timefmt import parse_duration

DEFAULT_RANGE = "1h"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("dashboards", help="generate the Grafana dashboards and provisioning; draw them as PNG",
                       description="Grafana dashboards as code: build writes the dashboard JSON and Grafana "
                                   "provisioning; render draws a dashboard from a live Prometheus.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    b = verbs.add_parser("build", help="write dashboard JSON + Grafana provisioning into --out",
                         description="Write DIR/dashboards/*.json, DIR/provisioning/datasources/hostwatch.yml and "
                                     "DIR/provisioning/dashboards/hostwatch.yml (mount DIR/provisioning at "
                                     "/etc/grafana/provisioning, DIR/dashboards at --dashboards-path).")
    b.add_argument("--out", required=True, type=Path, help="output directory")
    s = provisioning.DEFAULT
    b.add_argument("--prometheus-url", default=s.prometheus_url, help="Prometheus datasource URL (default %(default)s)")
    b.add_argument("--elasticsearch-url", default=s.elasticsearch_url,
                   help="Elasticsearch datasource URL (default %(default)s)")
    b.add_argument("--elasticsearch-index", default=s.elasticsearch_index,
                   help="index pattern of the indexer's indices (default %(default)s)")
    b.add_argument("--scrape-interval", default=s.scrape_interval,
                   help="Prometheus scrape interval, for $__rate_interval (default %(default)s)")
    b.add_argument("--dashboards-path", default=s.dashboards_path,
                   help="where Grafana finds the JSON files (default %(default)s)")
    b.set_defaults(func=run_build)

    r = verbs.add_parser("render", help="draw a dashboard from a live Prometheus into a PNG (needs matplotlib)",
                         description="Query Prometheus (and Elasticsearch for log panels) as Grafana would and draw "
                                     "the dashboard's panels in their grid. Install the extra: "
                                     "pip install 'hostwatch[render]'.")
    r.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    r.add_argument("--dashboard", required=True, metavar="NAME", help="dashboard name or uid (see `list`)")
    r.add_argument("--out", required=True, type=Path, metavar="FILE.png")
    r.add_argument("--elasticsearch", metavar="URL", help="Elasticsearch base URL, for the log panels")
    r.add_argument("--elasticsearch-index", default=s.elasticsearch_index, help="(default %(default)s)")
    r.add_argument("--range", default=DEFAULT_RANGE, help="time range up to now (default %(default)s)")
    r.add_argument("--scrape-interval", default=s.scrape_interval, help="(default %(default)s)")
    r.add_argument("--var", action="append", default=[], metavar="NAME=VALUE[,VALUE]",
                   help="pick a template variable's value(s); default All, or the first value")
    r.set_defaults(func=run_render)

    ls = verbs.add_parser("list", help="the dashboards and their panels")
    ls.add_argument("--markdown", action="store_true",
                    help="a table of every panel, its metrics and whether plain cAdvisor serves it")
    ls.set_defaults(func=run_list)


def _fail(msg: str, code: int = EXIT_USAGE) -> int:
    print(f"hostwatch dashboards: {msg}", file=sys.stderr)
    return code


def run_build(args: argparse.Namespace) -> int:
    from dashboards.build import BuildError, build

    settings = provisioning.Settings(args.prometheus_url, args.elasticsearch_url, args.elasticsearch_index,
                                     args.scrape_interval, args.dashboards_path)
    try:
        parse_duration(args.scrape_interval)
        written = build(args.out, settings)
    except ValueError as e:
        return _fail(f"--scrape-interval: {e}")
    except BuildError as e:
        return _fail(str(e), 1)
    except OSError as e:
        return _fail(f"{args.out}: {e.strerror or e}", 1)
    for path in written:
        print(path)
    return 0


def run_render(args: argparse.Namespace) -> int:
    try:
        from dashboards.render import render
    except ImportError as e:
        return _fail(f"render needs matplotlib (pip install 'hostwatch[render]'): {e}", 1)
    from dashboards.boards import board
    from dashboards.build import dashboard_json
    from dashboards.catalogue import Catalogue
    from dashboards.sources import Elasticsearch, Prometheus, SourceError
    from dashboards.variables import VariableError

    try:
        chosen = dict(_var(v) for v in args.var)
        span = parse_duration(args.range)
        scrape = parse_duration(args.scrape_interval)
        data = dashboard_json(board(args.dashboard), Catalogue())
    except (ValueError, KeyError) as e:
        return _fail(str(e).strip("'\""))
    es = Elasticsearch(args.elasticsearch, args.elasticsearch_index) if args.elasticsearch else None
    end = time.time()
    try:
        results = render(data, Prometheus(args.prometheus), args.out, es=es, start=end - span, end=end,
                         scrape_interval=scrape, chosen=chosen)
    except (SourceError, VariableError) as e:
        return _fail(str(e), 1)
    for res in results:
        note = f"  ({'; '.join(res.errors)})" if res.errors else ""
        print(f"{res.series:4d} series  {res.title}{note}")
    print(args.out)
    return 0


def _var(text: str) -> tuple[str, list[str]]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--var {text!r}: expected NAME=VALUE[,VALUE]")
    return name, [v for v in value.split(",") if v]


def run_list(args: argparse.Namespace) -> int:
    if args.markdown:
        from dashboards.docs import markdown

        print(markdown(), end="")
        return 0
    from dashboards.boards import BOARDS
    from dashboards.build import dashboard_json
    from dashboards.catalogue import Catalogue

    cat = Catalogue()
    for b in BOARDS:
        data = dashboard_json(b, cat)
        print(f"{b.name}  ({b.uid})  {b.title}")
        for p in data["panels"]:
            print(f"    {p['type']:10s} {p['title']}")
    return 0

