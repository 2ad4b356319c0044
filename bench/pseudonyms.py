"""The pseudonyms of one login, timed: what ``riskengine.core.edge`` asks of the
``Pseudonymizer`` per login, recorded over simulated logins, then replayed in a tight loop.

Prints, per login: the HMACs made (by kind), identifiers pseudonymized more than once
within the same login, and the CPU time of the pseudonyms alone and of the whole edge step
(``edge.to_event``, which also parses the timestamp and digests the request), with one key
and during a key rotation (``previous``: one retired key, where ``edge.aliases`` adds the
retired keys' pseudonyms).

    .venv/bin/python bench/pseudonyms.py                  # 5,000 logins, 5 runs, medians
    .venv/bin/python bench/pseudonyms.py --events 2000 --repeat 3

Compare two trees by running it with each on ``PYTHONPATH`` (the script times whatever
``riskengine`` it imports).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(Path("/tmp") / "pseudonyms.json"))
    args = parser.parse_args()

    import riskengine.core.privacy as privacy
    from riskengine.core import edge
    from riskengine.core.wire import ScoreRequest

    key, old = b"bench-key-0123456789abcdef", b"bench-old-0123456789abcdef"
    requests = [ScoreRequest.model_validate(b) for b in c.simulate(events=args.events)]
    received = datetime(2030, 1, 1, tzinfo=UTC)
    policy = edge.TimePolicy(trust_event_time=True) if hasattr(edge, "TimePolicy") else None

    def to_event(req: Any, p: Any) -> Any:
        kwargs: dict[str, Any] = {"event_id": req.event_id or "e", "received_at": received}
        if policy is not None:
            kwargs["time_policy"] = policy
        return edge.to_event(req, p, **kwargs)

    out: dict[str, Any] = {"riskengine": privacy.__file__}
    def run(label: str, previous: tuple[tuple[str, bytes], ...]) -> None:
        p = privacy.Pseudonymizer(key, key_id="k1", previous=previous)
        # What one login asks for: record the calls through a recording stand-in.
        # (kind, value, scope, how): "one" the current key's, "previous" the retired keys',
        # "every" all keys' at once (``under_every_key``).
        calls: list[list[tuple[Any, str, str, str]]] = []

        class Recording:
            rotating = p.rotating
            key_id = p.key_id

            def __call__(self, kind: Any, value: str, *, scope: str = "") -> str:
                calls[-1].append((kind, value, scope, "one"))
                return p(kind, value, scope=scope)

            def of_utf8(self, kind: Any, value: bytes, *, scope: str = "") -> str:
                # The request's digest: the same pseudonym as of the decoded text.
                calls[-1].append((kind, value.decode(), scope, "one"))
                return p.of_utf8(kind, value, scope=scope)

            def previous(self, kind: Any, value: str, *, scope: str = "") -> tuple[str, ...]:
                calls[-1].append((kind, value, scope, "previous"))
                return p.previous(kind, value, scope=scope)

            def under_every_key(self, kind: Any, value: str, *,
                                scope: str = "") -> tuple[str, ...]:
                calls[-1].append((kind, value, scope, "every"))
                return p.under_every_key(kind, value, scope=scope)

        recorder = Recording()
        for req in requests:
            calls.append([])
            to_event(req, recorder)
            edge.aliases(req, recorder)  # type: ignore[arg-type]
        hmacs = {"one": 1, "previous": len(previous), "every": 1 + len(previous)}
        per_login = [sum(hmacs[how] for *_, how in cs) for cs in calls]
        kinds = Counter(str(kind) for cs in calls for kind, _, _, how in cs if how != "previous")
        repeated = [sum(n - 1 for n in Counter((k, v, s) for k, v, s, how in cs
                                                if how != "previous").values())
                    for cs in calls]
        flat = [(kind, value, scope, how) for cs in calls for kind, value, scope, how in cs]

        def replay() -> float:
            t0 = time.process_time()
            for kind, value, scope, how in flat:
                if how == "previous":
                    p.previous(kind, value, scope=scope)
                elif how == "every":
                    p.under_every_key(kind, value, scope=scope)
                else:
                    p(kind, value, scope=scope)
            return (time.process_time() - t0) / len(requests) * 1e6

        def whole_edge() -> float:
            t0 = time.process_time()
            for req in requests:
                to_event(req, p)
                edge.aliases(req, p)
            return (time.process_time() - t0) / len(requests) * 1e6

        replay(), whole_edge()  # warm
        pseudonyms = [replay() for _ in range(args.repeat)]
        edges = [whole_edge() for _ in range(args.repeat)]
        out[label] = {
            "hmacs_per_login": statistics.mean(per_login),
            "repeated_per_login": statistics.mean(repeated),
            "calls_by_kind_per_login": {k: n / len(requests) for k, n in sorted(kinds.items())},
            "pseudonyms_us": statistics.median(pseudonyms),
            "pseudonyms_us_runs": pseudonyms,
            "edge_us": statistics.median(edges),
            "edge_us_runs": edges,
        }
        got = out[label]
        print(f"{label:<9} HMACs a login {got['hmacs_per_login']:.2f} "
              f"(identifiers pseudonymized again in the same login: "
              f"{got['repeated_per_login']:.2f})  pseudonyms {got['pseudonyms_us']:.2f} us "
              f"(runs {' '.join(f'{x:.2f}' for x in pseudonyms)})  whole edge step "
              f"{got['edge_us']:.1f} us")
    run("one key", ())
    run("rotating", (("k0", old),))
    c.write_json(args.out, {"args": vars(args), **out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
