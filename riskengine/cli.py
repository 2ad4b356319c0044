"""Command line: ``riskengine serve`` (more subcommands arrive with later capabilities)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from riskengine.api import create_app
    from riskengine.rules import RulesetError, load_ruleset
    from riskengine.settings import Settings

    overrides: dict[str, object] = {}
    if args.store:
        overrides["store"] = args.store
    if args.rules:
        overrides["rules"] = Path(args.rules)
    if args.env:
        overrides["env"] = args.env
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        load_ruleset(settings.rules)  # refuse a bad ruleset before binding the port
    except (ValidationError, RulesetError) as exc:
        print(f"riskengine: cannot start: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        workers=1,
        log_level=settings.log_level.lower(),
        access_log=False,  # one structured line per decision is logged instead
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="riskengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the scoring API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--store", help="sqlite:PATH (default sqlite:riskengine.db) or memory:")
    serve.add_argument("--rules", help="ruleset YAML (default: the shipped ruleset)")
    serve.add_argument("--env", choices=["development", "production"],
                       help="development allows the public pseudonymization key")
    serve.set_defaults(func=_serve)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
